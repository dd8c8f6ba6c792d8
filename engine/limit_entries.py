"""Entries as combo limit orders at mid, walked toward the far side within a bound (issue: a structure chosen for
a credit must never fill for a debit).

How LEAN fills a combo limit order and what its price means: core/combo_limits.py. An entry goes out at the mid
of its legs (rounded to the patient side of LEAN's tick); every `step` of open market without a fill the limit
moves one step of `limit_walk` toward the far side (the ask of the legs bought, the bid of the legs sold) of the
quotes of that moment, the last step a tick past it; then, for ENTRY_CHASE_STEPS more bars, a tick past the
far side of each new bar (a limit set on one bar is judged against the next one's quotes). The bound is set
when the entry goes out: a credit structure keeps at least ENTRY_MIN_CREDIT_KEPT of the credit at mid then
(never a debit), a debit structure pays at most a tick past the far side then. While the walk goes on, the
desk's unfilled-order timeout waits for it (`holds`); once the last step is out the timeout counts from that
step and cancels the order as it cancels any order, so nothing is re-sent forever and an entry waits at most
ENTRY_LIMIT_STEPS + ENTRY_CHASE_STEPS bars plus the timeout.

Invariants:
- the walk lives in memory only: after a restart the working order keeps its last limit (re-bound by the start-up
  recovery like any order) until the timeout cancels it, so a crash never moves a limit twice or past its bound;
- a walk step never sends an order: it moves the limit of the one working group (`BrokerPort.update_limit`); a
  refused move ends the walk with the broker's reason logged;
- without usable quotes for every leg there is no limit to compute: the entry goes out as a market order and
  says so (quotes_missing has already waited for prices, so this is rare).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Dict, Optional, Sequence, Tuple, Union

from core.combo_limits import limit_tick, limit_walk, unit_price
from core.order_groups import open_legs
from core.ports import BrokerPort, LegSpec, LogPort
from engine.state import EngineState
from strategies.base import usable

ENTRY_LIMIT_STEPS = 3  # ours: mid, two steps between, then a tick past the far side
ENTRY_CHASE_STEPS = 3  # ours: then a tick past the far side of each new bar, this many more times
_ALL_STEPS = ENTRY_LIMIT_STEPS + ENTRY_CHASE_STEPS
ENTRY_LIMIT_STEP = timedelta(minutes=1)  # ours: one bar per step
ENTRY_MIN_CREDIT_KEPT = 0.5  # ours: a credit entry takes no less than half the credit at mid when it went out


@dataclass(frozen=True)
class EntryLimit:
    """The first limit of an entry and its bound (the highest limit the walk may reach)."""

    first: float
    ceiling: float


@dataclass
class _Walk:
    order_id: int  # any leg's order id: LEAN moves the whole group's limit
    legs: Tuple[LegSpec, ...]
    ceiling: float
    step: int  # steps taken
    next_at: datetime
    last_step_at: datetime  # when the limit last moved (or went out)


class LimitEntries:
    def __init__(self, state: EngineState, broker: BrokerPort, log: LogPort, *, step: timedelta = ENTRY_LIMIT_STEP):
        self._state = state
        self._broker = broker
        self._log = log
        self._step = step
        self._walks: Dict[str, _Walk] = {}

    def first_limit(self, legs: Sequence[LegSpec], for_credit: bool) -> Union[EntryLimit, str, None]:
        """The first limit of an entry of `legs` and its bound; None when a leg has no usable quote (then the entry
        goes out at market); the reason when even the mid is beyond the bound (then no entry now). `for_credit`:
        the strategy chose the structure for a credit (EntryPlan.est_net_price < 0), so it never pays a debit,
        whatever the quotes say now."""
        sides = self._sides(legs)
        if sides is None:
            return None
        mid, far = sides
        tick = limit_tick(legs)
        if for_credit:
            ceiling = min(-tick, mid * ENTRY_MIN_CREDIT_KEPT) if mid < 0 else -tick
        else:
            ceiling = max(mid, far) + tick
        walk = limit_walk(mid, far, tick, ENTRY_LIMIT_STEPS, ceiling)
        if not walk:
            return f"the mid {mid:.2f} is beyond the bound {ceiling:.2f}"
        return EntryLimit(walk[0], ceiling)

    def start(self, group_id: str, order_id: int, legs: Sequence[LegSpec], limit: EntryLimit) -> None:
        """Remember the walk of an entry that went out at its first limit."""
        now = self._state.now
        self._walks[group_id] = _Walk(order_id, tuple(legs), limit.ceiling, 0, now + self._step, now)

    def holds(self, group_id: str, timeout: timedelta) -> bool:
        """True while the entry's walk goes on, or less than `timeout` has passed since its last step: the
        unfilled-order timeout must not cancel a limit that is still being walked."""
        walk = self._walks.get(group_id)
        if walk is None:
            return False
        return walk.step < _ALL_STEPS or self._state.now - walk.last_step_at < timeout

    def advance(self) -> None:
        """Move each working entry one step when its time has come (open market only); forget finished ones."""
        now = self._state.now
        for group_id in sorted(self._walks):
            walk = self._walks[group_id]
            group = self._state.groups.get(group_id)
            if group is None or not open_legs(group) or group_id in self._state.cancel_requested:
                del self._walks[group_id]
                continue
            if walk.step >= _ALL_STEPS or not self._state.market_open or now < walk.next_at:
                continue  # walked out (kept for `holds` until the timeout cancels it), or not yet
            walk.step += 1
            walk.next_at, walk.last_step_at = now + self._step, now
            self._move(group_id, walk)

    def _move(self, group_id: str, walk: _Walk) -> None:
        sides = self._sides(walk.legs)
        if sides is None:
            return  # no quotes this bar: the limit stays, the step is spent
        prices = limit_walk(sides[0], sides[1], limit_tick(walk.legs), ENTRY_LIMIT_STEPS, walk.ceiling)
        if not prices:
            self._log.info(f"engine: {group_id}: the mid is beyond the bound {walk.ceiling:g}; limit kept")
            return
        price = prices[min(walk.step, len(prices) - 1)]
        try:
            reason = self._broker.update_limit(walk.order_id, price)
        except Exception as error:
            reason = f"update raised {error!r}"
        if reason:
            self._log.error(f"engine: {group_id}: moving the limit to {price:g} refused ({reason}); walk ended")
            walk.step = _ALL_STEPS
        else:
            left = _ALL_STEPS - walk.step
            self._log.info(f"engine: {group_id}: limit moved to {price:g} ({left} step(s) left)")

    def _sides(self, legs: Sequence[LegSpec]) -> Optional[Tuple[float, float]]:
        """(mid, far side) of one unit of the ratio legs from the last market view; None without usable quotes."""
        view = self._state.view
        if view is None:
            return None
        mids: Dict[str, float] = {}
        far: Dict[str, float] = {}
        for leg in legs:
            quote = view.quote(leg.symbol)
            if quote is None or not usable(quote):
                return None
            mids[leg.symbol] = quote.mid
            far[leg.symbol] = quote.ask if leg.quantity > 0 else quote.bid
        return unit_price(legs, mids), unit_price(legs, far)


__all__ = [
    "ENTRY_CHASE_STEPS",
    "ENTRY_LIMIT_STEP",
    "ENTRY_LIMIT_STEPS",
    "ENTRY_MIN_CREDIT_KEPT",
    "EntryLimit",
    "LimitEntries",
]
