"""Order groups: the legs we meant to trade and what the broker did with them, as pure functions.

Every function takes frozen records and returns new ones; nothing here talks to LEAN, the store or a clock.

Invariants (checked by tests/test_order_groups_properties.py over random event sequences):

1. ``|leg.filled_quantity| <= |leg.quantity|`` and ``filled_quantity`` has the sign of ``quantity`` (or is 0).
   A fill that would overshoot is clamped; a fill of the wrong sign is refused.
2. A fill event counts at most once: its key ``f"{run_id}/{order_id}/{event_id}"`` is remembered on the leg
   (the newest ``MAX_FILL_KEYS``). Even a replay older than that window cannot push a leg past its quantity (1.).
3. The group status is a function of its legs (``derive_status``), except that RESOLVED is sticky (set by the
   engine once a recovery group has finished) and a refused submission with nothing filled is FAILED:
   - every leg fully filled                           -> FILLED
   - something filled, not everything                 -> INCOMPLETE (the rest may be open or dead)
   - nothing filled, some leg still open              -> SUBMITTED (PENDING while no leg was ever submitted)
   - nothing filled, nothing open, every leg INVALID  -> FAILED
   - nothing filled, nothing open otherwise           -> CANCELED
4. A leg never goes back: FILLED stays FILLED; a late SUBMITTED/NEW event after a fill changes nothing.
5. Order ids are meaningful only inside ``group.run_id``; an event from another run re-binds the group to that
   run (stale ids are dropped), because after a live restart LEAN gives reloaded orders new ids.

Events are matched to a leg by order id when the id is known in this run, else by symbol (LEAN may deliver the
fills of a combo re-entrantly, before ``combo_market_order`` returns and ``mark_submitted`` could record ids).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from math import gcd
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, TypeVar

from core.ports import EventStatus, LegSpec, OrderEventData, SubmittedOrder
from core.records import GroupPurpose, GroupStatus, LegRecord, LegStatus, OrderGroupRecord

_T = TypeVar("_T")

MAX_FILL_KEYS = 32  # per leg; a leg rarely sees more than a handful of fills

OPEN_LEG_STATUSES = frozenset({LegStatus.PENDING, LegStatus.SUBMITTED, LegStatus.PARTIALLY_FILLED})
DEAD_LEG_STATUSES = frozenset({LegStatus.CANCELED, LegStatus.INVALID})
TERMINAL_GROUP_STATUSES = frozenset(
    {GroupStatus.FILLED, GroupStatus.CANCELED, GroupStatus.FAILED, GroupStatus.RESOLVED}
)
IN_FLIGHT_GROUP_STATUSES = frozenset(set(GroupStatus) - TERMINAL_GROUP_STATUSES)  # PENDING, SUBMITTED, INCOMPLETE
_WORKING_EVENT_STATUSES = frozenset(
    {EventStatus.NEW, EventStatus.SUBMITTED, EventStatus.CANCEL_PENDING, EventStatus.UPDATE_SUBMITTED}
)


class EventOutcome(StrEnum):
    """Why an event did or did not change a group (for the caller's log line)."""

    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"  # fill key already applied
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"  # no leg of this group trades that contract
    WRONG_SIGN = "WRONG_SIGN"  # a fill in the opposite direction of the leg: not ours to count
    EXCESS = "EXCESS"  # the leg is already fully filled: nothing left to count
    NO_CHANGE = "NO_CHANGE"  # e.g. a late SUBMITTED after FILLED


# ----------------------------------------------------------------------------------------------- building


def new_group(  # noqa: PLR0917 (the signature the team agreed on)
    group_id: str,
    strategy_id: str,
    purpose: GroupPurpose,
    position_id: str,
    legs: Sequence[LegSpec],
    now: datetime,
    run_id: str,
    parent_group_id: Optional[str] = None,
) -> OrderGroupRecord:
    """A write-ahead group: status PENDING, legs PENDING. Save it (and flush) before placing any order.

    Each ``LegSpec.quantity`` is the leg's *total* signed quantity (already multiplied by the number of units).
    Raises ValueError for no legs, a zero quantity or two legs on the same contract (legs are matched by symbol).
    """
    if not legs:
        raise ValueError(f"group {group_id}: no legs")
    symbols = [leg.symbol for leg in legs]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"group {group_id}: two legs on the same contract {symbols}")
    if any(leg.quantity == 0 for leg in legs):
        raise ValueError(f"group {group_id}: a leg has quantity 0")
    records = tuple(
        LegRecord(
            symbol=leg.symbol,
            underlying=leg.underlying,
            right=leg.right,
            strike=leg.strike,
            expiry=leg.expiry,
            quantity=leg.quantity,
        )
        for leg in legs
    )
    return OrderGroupRecord(
        group_id=group_id,
        strategy_id=strategy_id,
        purpose=purpose,
        position_id=position_id,
        legs=records,
        status=GroupStatus.PENDING,
        created_at=now,
        updated_at=now,
        run_id=run_id,
        parent_group_id=parent_group_id,
    )


def combo_units(group: OrderGroupRecord) -> int:
    """The number of structure units in the group: gcd of the leg quantities (2x 1-1-2 -> 2)."""
    units = 0
    for leg in group.legs:
        units = gcd(units, abs(leg.quantity))
    return max(units, 1)


def combo_legs(group: OrderGroupRecord) -> Tuple[Tuple[LegSpec, ...], int]:
    """(per-unit legs, units) for ``combo_market_order(legs, units)``; remaining quantities only."""
    pending = pending_legs(group)
    units = 0
    for leg in pending:
        units = gcd(units, abs(leg.quantity))
    units = max(units, 1)
    return tuple(replace(leg, quantity=leg.quantity // units) for leg in pending), units


# ----------------------------------------------------------------------------------------------- status


def _leg_is_filled(leg: LegRecord) -> bool:
    return leg.filled_quantity == leg.quantity


def derive_status(legs: Sequence[LegRecord], current: GroupStatus) -> GroupStatus:
    """The group status implied by its legs (invariant 3)."""
    if current is GroupStatus.RESOLVED:
        return current
    if all(_leg_is_filled(leg) for leg in legs):
        return GroupStatus.FILLED
    if any(leg.filled_quantity != 0 for leg in legs):
        return GroupStatus.INCOMPLETE
    open_legs = [leg for leg in legs if leg.status in OPEN_LEG_STATUSES]
    if open_legs:
        if all(leg.status is LegStatus.PENDING and not leg.order_ids for leg in legs):
            return GroupStatus.PENDING
        return GroupStatus.SUBMITTED
    if all(leg.status is LegStatus.INVALID for leg in legs):
        return GroupStatus.FAILED
    return GroupStatus.CANCELED


def _leg_status_after_fill(leg: LegRecord) -> LegStatus:
    if _leg_is_filled(leg):
        return LegStatus.FILLED
    if leg.status in DEAD_LEG_STATUSES:
        return leg.status  # a late partial fill of a cancelled order: the fill counts, the leg stays dead
    return LegStatus.PARTIALLY_FILLED if leg.filled_quantity != 0 else LegStatus.SUBMITTED


def _with_legs(group: OrderGroupRecord, legs: Sequence[LegRecord], now: datetime) -> OrderGroupRecord:
    legs_t = tuple(legs)
    return replace(group, legs=legs_t, status=derive_status(legs_t, group.status), updated_at=now)


def filled_legs(group: OrderGroupRecord) -> Tuple[LegSpec, ...]:
    """The filled part of each leg (legs with nothing filled are left out)."""
    return tuple(_spec(leg, leg.filled_quantity) for leg in group.legs if leg.filled_quantity != 0)


def net_filled_legs(groups: Iterable[OrderGroupRecord]) -> Tuple[LegSpec, ...]:
    """Net filled quantity per contract over several groups (e.g. one position's entry, completions and
    rollbacks), in the order contracts first appear; contracts that net to zero are left out."""
    net: Dict[str, Tuple[LegRecord, int]] = {}
    for group in groups:
        for leg in group.legs:
            first, quantity = net.get(leg.symbol, (leg, 0))
            net[leg.symbol] = (first, quantity + leg.filled_quantity)
    return tuple(_spec(leg, quantity) for leg, quantity in net.values() if quantity)


def pending_legs(group: OrderGroupRecord) -> Tuple[LegSpec, ...]:
    """The remaining (unfilled) quantity of each leg, as LegSpecs (fully filled legs are left out)."""
    return tuple(_spec(leg, remaining) for leg in group.legs if (remaining := leg.quantity - leg.filled_quantity))


def remaining_quantity(leg: LegRecord) -> int:
    """Signed quantity still to fill on this leg."""
    return leg.quantity - leg.filled_quantity


def open_legs(group: OrderGroupRecord) -> Tuple[LegRecord, ...]:
    """Legs the broker may still fill (pending, submitted or partially filled)."""
    return tuple(leg for leg in group.legs if leg.status in OPEN_LEG_STATUSES and not _leg_is_filled(leg))


def is_incomplete(group: OrderGroupRecord) -> bool:
    return group.status is GroupStatus.INCOMPLETE


def is_done(group: OrderGroupRecord) -> bool:
    """Terminal: FILLED, CANCELED, FAILED or RESOLVED. An INCOMPLETE group is not done: recovery decides."""
    return group.status in TERMINAL_GROUP_STATUSES


def is_in_flight(group: OrderGroupRecord) -> bool:
    """Its fills are not yet owned by a position (PENDING, SUBMITTED or INCOMPLETE)."""
    return not is_done(group)


def net_fill_price(group: OrderGroupRecord) -> float:
    """Net price per unit of the structure from the fills so far: sum(filled * price) / units.

    Positive = debit paid, negative = credit received (same convention as PositionRecord.entry_price).
    """
    total = sum(leg.filled_quantity * leg.avg_fill_price for leg in group.legs)
    return total / combo_units(group)


def _spec(leg: LegRecord, quantity: int) -> LegSpec:
    return LegSpec(
        symbol=leg.symbol,
        underlying=leg.underlying,
        right=leg.right,
        strike=leg.strike,
        expiry=leg.expiry,
        quantity=quantity,
    )


# ----------------------------------------------------------------------------------------------- submission


def mark_submitted(group: OrderGroupRecord, orders: Sequence[SubmittedOrder], now: datetime) -> OrderGroupRecord:
    """Record the order ids the broker gave each leg. Legs not in ``orders`` are left as they are.

    Safe after events were already applied (fills delivered before the submit call returned): a filled leg
    stays filled, ids are merged, never duplicated. An empty ``orders`` means the broker refused the group:
    every leg still pending becomes INVALID (group FAILED when nothing filled).
    """
    if not orders:
        return mark_refused(group, now)
    by_symbol: Dict[str, list[SubmittedOrder]] = {}
    for order in orders:
        by_symbol.setdefault(order.symbol, []).append(order)
    legs = []
    for leg in group.legs:
        mine = by_symbol.get(leg.symbol, [])
        if not mine:
            legs.append(leg)
            continue
        order_ids = _merge(leg.order_ids, [o.order_id for o in mine])
        broker_ids = _merge(leg.broker_ids, [b for o in mine for b in o.broker_ids])
        status = LegStatus.SUBMITTED if leg.status is LegStatus.PENDING else leg.status
        legs.append(replace(leg, order_ids=order_ids, broker_ids=broker_ids, status=status))
    return _with_legs(group, legs, now)


def mark_refused(group: OrderGroupRecord, now: datetime, symbols: Optional[Sequence[str]] = None) -> OrderGroupRecord:
    """The broker refused the orders of the given legs (default: every leg not yet filled): they become INVALID."""
    chosen = set(symbols) if symbols is not None else None
    legs = [
        replace(leg, status=LegStatus.INVALID)
        if leg.status in OPEN_LEG_STATUSES and not _leg_is_filled(leg) and (chosen is None or leg.symbol in chosen)
        else leg
        for leg in group.legs
    ]
    return _with_legs(group, legs, now)


def cancel_open_legs(group: OrderGroupRecord, now: datetime) -> OrderGroupRecord:
    """Every open leg becomes CANCELED (its order no longer exists, or we cancelled it). Fills are kept."""
    legs = [
        replace(leg, status=LegStatus.CANCELED) if leg.status in OPEN_LEG_STATUSES and not _leg_is_filled(leg) else leg
        for leg in group.legs
    ]
    return _with_legs(group, legs, now)


def adopt_run(
    group: OrderGroupRecord, run_id: str, live_orders: Sequence[SubmittedOrder], now: datetime
) -> OrderGroupRecord:
    """After a restart: bind the group to ``run_id``. ``live_orders`` are the orders that survived the restart
    (found by broker id or tag, with their new LEAN ids). Old ids are dropped; an open leg without a live order
    is CANCELED, including a written-ahead PENDING leg whose order was never recorded (its order is gone or was
    never placed: anything it filled while we were down shows up in holdings, see recovery.reconcile).
    """
    by_symbol: Dict[str, list[SubmittedOrder]] = {}
    for order in live_orders:
        by_symbol.setdefault(order.symbol, []).append(order)
    legs = []
    for leg in group.legs:
        mine = by_symbol.get(leg.symbol, [])
        ids = tuple(dict.fromkeys(o.order_id for o in mine))
        status = leg.status
        if not mine and status in OPEN_LEG_STATUSES and not _leg_is_filled(leg):
            status = LegStatus.CANCELED
        legs.append(replace(leg, order_ids=ids, status=status))
    return _with_legs(replace(group, run_id=run_id), legs, now)


def with_decision(group: OrderGroupRecord, decision: str, now: datetime) -> OrderGroupRecord:
    """Persist a recovery decision on the group (save it before acting on it)."""
    return replace(group, decision=decision, updated_at=now)


def mark_resolved(group: OrderGroupRecord, now: datetime, note: Optional[str] = None) -> OrderGroupRecord:
    """The recovery group of this incomplete group has finished: RESOLVED (sticky)."""
    decision = group.decision if note is None else note
    return replace(group, status=GroupStatus.RESOLVED, decision=decision, updated_at=now)


def _merge(old: Tuple[_T, ...], new: Sequence[_T]) -> Tuple[_T, ...]:
    return tuple(dict.fromkeys([*old, *new]))


# ----------------------------------------------------------------------------------------------- events


def fill_key(run_id: str, order_id: int, event_id: int) -> str:
    return f"{run_id}/{order_id}/{event_id}"


def _find_leg(group: OrderGroupRecord, event: OrderEventData, same_run: bool) -> Optional[int]:
    if same_run:
        for index, leg in enumerate(group.legs):
            if event.order_id in leg.order_ids:
                return index if leg.symbol == event.symbol else None
    for index, leg in enumerate(group.legs):
        if leg.symbol == event.symbol:
            return index
    return None


def _add_fill(leg: LegRecord, quantity: int, price: Optional[float]) -> Tuple[LegRecord, int]:
    """Clamp ``quantity`` to what is left on the leg and fold it in; returns (leg, counted quantity)."""
    remaining = leg.quantity - leg.filled_quantity
    if remaining == 0 or quantity == 0 or (quantity > 0) != (remaining > 0):
        return leg, 0
    counted = quantity if abs(quantity) <= abs(remaining) else remaining
    filled = leg.filled_quantity + counted
    avg = leg.avg_fill_price
    if price is not None:
        avg = (abs(leg.filled_quantity) * leg.avg_fill_price + abs(counted) * price) / abs(filled)
    leg = replace(leg, filled_quantity=filled, avg_fill_price=avg)
    return replace(leg, status=_leg_status_after_fill(leg)), counted


def classify_event(group: OrderGroupRecord, event: OrderEventData, run_id: str) -> EventOutcome:
    """What ``apply_order_event`` would do with this event, without doing it (for logging)."""
    return _apply(group, event, run_id, group.updated_at)[1]


def apply_order_event(
    group: OrderGroupRecord, event: OrderEventData, run_id: str, now: datetime
) -> Tuple[OrderGroupRecord, bool]:
    """Fold one order event into the group. Returns (group, applied); applied is False (and the group is
    returned unchanged) for a duplicate, an unknown symbol, a wrong-sign or excess fill, or a no-op status.
    Never raises on strange events: the caller logs them (see ``classify_event`` for the reason).
    """
    new_group_, outcome = _apply(group, event, run_id, now)
    return new_group_, outcome is EventOutcome.APPLIED


def _apply(
    group: OrderGroupRecord, event: OrderEventData, run_id: str, now: datetime
) -> Tuple[OrderGroupRecord, EventOutcome]:
    original = group
    same_run = group.run_id == run_id
    index = _find_leg(group, event, same_run)
    if index is None:
        return original, EventOutcome.UNKNOWN_SYMBOL
    if not same_run:
        # the group's ids belong to a dead run: drop them, this run's ids take over (invariant 5)
        group = replace(group, run_id=run_id, legs=tuple(replace(leg, order_ids=()) for leg in group.legs))
    leg = group.legs[index]
    order_ids = _merge(leg.order_ids, [event.order_id])
    broker_ids = _merge(leg.broker_ids, list(event.broker_ids))
    key = fill_key(run_id, event.order_id, event.event_id)
    outcome = EventOutcome.NO_CHANGE
    if event.status in (EventStatus.FILLED, EventStatus.PARTIALLY_FILLED) and event.fill_quantity != 0:
        if key in leg.fill_keys:
            return original, EventOutcome.DUPLICATE
        remaining = leg.quantity - leg.filled_quantity
        if remaining == 0:
            return original, EventOutcome.EXCESS
        if (event.fill_quantity > 0) != (remaining > 0):
            return original, EventOutcome.WRONG_SIGN
        leg, _ = _add_fill(leg, event.fill_quantity, event.fill_price)
        leg = replace(leg, fill_keys=(*leg.fill_keys, key)[-MAX_FILL_KEYS:])
        outcome = EventOutcome.APPLIED
    elif event.status in (EventStatus.CANCELED, EventStatus.INVALID):
        if leg.status in OPEN_LEG_STATUSES and not _leg_is_filled(leg):
            dead = LegStatus.CANCELED if event.status is EventStatus.CANCELED else LegStatus.INVALID
            leg = replace(leg, status=dead)
            outcome = EventOutcome.APPLIED
    elif event.status in _WORKING_EVENT_STATUSES:
        if leg.status is LegStatus.PENDING:
            leg = replace(leg, status=LegStatus.SUBMITTED)
            outcome = EventOutcome.APPLIED
    if order_ids != leg.order_ids or broker_ids != leg.broker_ids:
        leg = replace(leg, order_ids=order_ids, broker_ids=broker_ids)
        outcome = EventOutcome.APPLIED if outcome is EventOutcome.NO_CHANGE else outcome
    if outcome is not EventOutcome.APPLIED:
        return original, outcome
    legs = list(group.legs)
    legs[index] = leg
    return _with_legs(group, legs, now), outcome


def apply_holdings_fill(
    group: OrderGroupRecord, symbol: str, filled_quantity: int, now: datetime, fill_price: Optional[float] = None
) -> OrderGroupRecord:
    """A fill learned from holdings after a restart (no event exists for it). ``filled_quantity`` is the signed
    quantity newly filled. Clamped like an event fill; the average price is unchanged unless ``fill_price`` is given.
    Unknown symbol, wrong sign or nothing left -> the group is returned unchanged.
    """
    for index, leg in enumerate(group.legs):
        if leg.symbol == symbol:
            new_leg, counted = _add_fill(leg, filled_quantity, fill_price)
            if counted == 0:
                return group
            legs = list(group.legs)
            legs[index] = new_leg
            return _with_legs(group, legs, now)
    return group


def set_leg_fill(group: OrderGroupRecord, symbol: str, filled_quantity: int, now: datetime) -> OrderGroupRecord:
    """Holdings are the truth: set a leg's filled quantity (clamped to [0, quantity]) when holdings show less
    than the events said (used by reconcile). Unknown symbol -> unchanged."""
    legs = []
    for leg in group.legs:
        if leg.symbol != symbol:
            legs.append(leg)
            continue
        sign = 1 if leg.quantity > 0 else -1
        magnitude = min(max(filled_quantity * sign, 0), abs(leg.quantity))
        refilled = replace(leg, filled_quantity=sign * magnitude)
        status = _leg_status_after_fill(refilled)
        if leg.status is LegStatus.FILLED and status is not LegStatus.FILLED:
            status = LegStatus.CANCELED  # its order is finished: what holdings do not show will never fill
        elif refilled.filled_quantity == 0 and status not in DEAD_LEG_STATUSES:
            status = LegStatus.SUBMITTED if refilled.order_ids else LegStatus.PENDING
        legs.append(replace(refilled, status=status))
    return _with_legs(group, legs, now)


def leg_by_symbol(group: OrderGroupRecord) -> Mapping[str, LegRecord]:
    return {leg.symbol: leg for leg in group.legs}


def find_group_for_event(
    groups: Mapping[str, OrderGroupRecord], event: OrderEventData, run_id: str
) -> Optional[OrderGroupRecord]:
    """The group an event belongs to: by tag (= group id) first, else by an order id known in this run."""
    if event.tag and event.tag in groups:
        return groups[event.tag]
    for group_id in sorted(groups):
        group = groups[group_id]
        if group.run_id == run_id and any(event.order_id in leg.order_ids for leg in group.legs):
            return group
    return None


__all__ = [
    "DEAD_LEG_STATUSES",
    "IN_FLIGHT_GROUP_STATUSES",
    "MAX_FILL_KEYS",
    "OPEN_LEG_STATUSES",
    "TERMINAL_GROUP_STATUSES",
    "EventOutcome",
    "adopt_run",
    "apply_holdings_fill",
    "apply_order_event",
    "cancel_open_legs",
    "classify_event",
    "combo_legs",
    "combo_units",
    "derive_status",
    "fill_key",
    "filled_legs",
    "find_group_for_event",
    "is_done",
    "is_in_flight",
    "is_incomplete",
    "leg_by_symbol",
    "mark_refused",
    "mark_resolved",
    "mark_submitted",
    "net_fill_price",
    "net_filled_legs",
    "new_group",
    "open_legs",
    "pending_legs",
    "remaining_quantity",
    "set_leg_fill",
    "with_decision",
]
