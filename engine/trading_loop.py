"""The trading loop: what happens on every market view once the engine trades.

Risk first (`update_risk`: equity, breakers, saved at once), then exits (`manage_positions`: the strategies' own
rules, the CLOSE_ALL breaker, what an exercise left, positions no strategy of this run manages), then entries
(`look_for_entries`: one cycle per strategy at a time, risk limits and buying power checked before the order
desk writes the entry ahead). Every strategy hook goes through the one safe-call wrapper (engine/safe_call.py).
"""

from __future__ import annotations

import math
from datetime import date
from functools import partial
from typing import Any, Dict, Mapping, Optional

from core.params import Params
from core.ports import LogPort, MarketView
from core.records import PositionRecord, PositionStatus, StrategyState
from core.state_machine import StrategyMachine
from engine.exercise import ExerciseBooking
from engine.facts import in_flight_groups_of, open_positions_of, settled_view
from engine.ledger import Ledger
from engine.order_desk import OrderDesk
from engine.safe_call import StrategyCalls
from engine.state import EngineState
from strategies.base import Reduce, Strategy, conservative_margin, position_units


class TradingLoop:
    def __init__(
        self,
        state: EngineState,
        ledger: Ledger,
        *,
        desk: OrderDesk,
        exercise: ExerciseBooking,
        log: LogPort,
        params: Params,
        rules: Mapping[str, Strategy[Any]],
        calls: StrategyCalls,
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._desk = desk
        self._exercise = exercise
        self._log = log
        self._params = params
        self._rules = rules
        self._calls = calls
        self._skips_logged: Dict[tuple[str, str], date] = {}  # (strategy, skip reason) -> the day it was logged
        # the day each strategy's last buying-power refusal was logged: once a day, not on every bar
        self._bp_refusal_logged: Dict[str, date] = {}

    def update_risk(self, view: MarketView) -> None:
        if self._state.risk is None:
            return
        self._state.last_equity = view.equity
        before = self._state.risk.record.breaker
        if self._state.risk.update_equity(view.equity, view.now):
            after = self._state.risk.record.breaker
            self._ledger.save_risk(immediate=True)
            self._ledger.flush()  # a breaker must survive a crash a second later (LEAN's store flushes saves ~5 s late)
            self._ledger.alert("breaker", f"risk breaker {before.value} -> {after.value}", "risk")
        else:
            # A new peak or a new day's loss reset is written at once (not left for the scheduled save): LEAN's
            # flush timer puts it on disk within seconds, long before the next bar could measure a drawdown from
            # it. A bar that changed nothing writes nothing (same record object).
            self._ledger.save_risk(immediate=True)

    def manage_positions(self, view: MarketView) -> None:
        """Exits: strategies' own rules, the CLOSE_ALL breaker, and positions no rules manage (adopted by
        recovery, or of a strategy this run does not know), which are closed at the first open market.

        CLOSE_ALL reaches every open position, whoever owns it and whatever state its strategy is in. A position
        that NEEDS ATTENTION (recovery gave up on orders the broker refused) is managed like any other, but gets
        at most one exit attempt a trading day: the broker refused the same kind of order minutes ago, and an
        identical order every minute would only repeat the refusal."""
        close_all = self._state.risk is not None and self._state.risk.close_all_required()
        for position_id, position in sorted(self._state.positions.items()):
            if position.status is not PositionStatus.OPEN or self._state.in_flight_for_position(position_id):
                continue
            if position.attention and self._state.attention_exit_day.get(position_id) == view.now.date():
                continue
            rules = self._rules.get(position.strategy_id)
            machine = self._state.machines.get(position.strategy_id)
            owns = (
                machine is not None
                and machine.state is StrategyState.ACTIVE
                and machine.record.position_id == position_id
            )
            if close_all:
                self._exit_position(position, "risk breaker CLOSE_ALL", machine if owns else None)
            elif self._exercise.settled_remainder(position):
                left = "what an exercise/assignment/expiry left of the structure: closing"
                self._exit_position(position, left, machine if owns else None)
            elif rules is None or machine is None:
                self._exit_position(position, "not managed by any strategy in this run: closing", None)
            elif owns:
                self._apply_rules(view, position, rules, machine)

    def _apply_rules(
        self, view: MarketView, position: PositionRecord, rules: Strategy[Any], machine: StrategyMachine
    ) -> None:
        """The owner's exit rule, then its adjustment, on what the position holds now."""
        held = settled_view(position, self._state.groups.values())
        sid = position.strategy_id
        reason = self._calls.call(sid, "exit_reason", partial(rules.exit_reason, view, held), None)
        if reason:
            self._exit_position(position, reason, machine)
            return
        change = self._calls.call(sid, "adjustment", partial(rules.adjustment, view, held), None)
        if change is None:
            return
        if not isinstance(change, Reduce) or not isinstance(change.units, int) or change.units <= 0:
            self._log.error(f"engine: {sid} adjustment {change!r} is not a Reduce of whole units; ignored")
        elif change.units >= position_units(held):
            self._exit_position(position, f"{change.reason} (all units)", machine)
        else:
            self._desk.reduce(position, change.units, change.reason, machine)

    def _exit_position(self, position: PositionRecord, reason: str, machine: Optional[StrategyMachine]) -> None:
        if position.attention:
            self._state.attention_exit_day[position.position_id] = self._state.now.date()
            reason = f"{reason} (position needs attention: one exit attempt a day)"
        self._desk.exit(position, reason, machine)

    def look_for_entries(self, view: MarketView) -> None:
        risk = self._state.risk
        if risk is None or risk.close_all_required():
            return
        if any(
            p.status is PositionStatus.CLOSING and not self._state.in_flight_for_position(pid)
            for pid, p in self._state.positions.items()
        ):
            return  # a close waits for its fill price: its loss is not in the risk limits yet
        for strategy_id, machine in sorted(self._state.machines.items()):
            rules = self._rules.get(strategy_id)
            if rules is None or not rules.enabled or machine.state is not StrategyState.WAITING:
                continue
            # one cycle at a time: never a second entry while anything of this strategy is held or moving
            if open_positions_of(strategy_id, self._state.positions) or in_flight_groups_of(
                strategy_id, self._state.groups
            ):
                continue
            try:
                size = risk.size_factor(strategy_id)
                if size <= 0 or not risk.entries_allowed(view.vix, strategy_id):
                    continue
            except Exception as error:
                self._log.error(f"engine: risk check of {strategy_id} failed: {error!r}")
                continue
            plan = self._calls.call(
                strategy_id, "entry_plan", partial(rules.entry_plan, view, machine.record, size), None
            )
            if plan is None:
                if not rules.last_skip_routine:
                    self._log_skip(strategy_id, rules.last_reason, size)
            elif self._buying_power_allows(strategy_id, size, view):
                self._desk.enter(machine, plan, view.vix)

    def _log_skip(self, strategy_id: str, reason: str, size_factor: float) -> None:
        """An entry moment that produced no plan is logged at info with the rule's reason (and its numbers, e.g.
        a size of 0), once per reason a day; the strategy marks "not the entry day/window" routine (not news)."""
        if not reason:
            return
        key = (strategy_id, reason.split(" (", maxsplit=1)[0])  # the reason without its numbers
        if self._skips_logged.get(key) == self._state.now.date():
            return
        self._skips_logged[key] = self._state.now.date()
        self._log.info(f"engine: {strategy_id} entry skipped: {reason} (size factor {size_factor:g})")

    def _buying_power_allows(self, strategy_id: str, size_factor: float, view: MarketView) -> bool:
        """[F] BP by VIX regime: refuse the entry when the margin in use plus this plan's own share (the
        strategy's BP per position x the size factor, of equity) would exceed risk.max_bp_fraction(VIX). Without
        a risk manager (only before start-up restored one) there is no limit to check: refused, and said so."""
        risk = self._state.risk
        if risk is None:
            self._log.error(f"engine: {strategy_id} entry refused: no risk manager to check buying power against")
            return False
        limit = risk.max_bp_fraction(view.vix)
        equity = view.equity
        used = view.margin_used
        source = "broker"
        if used is None or not math.isfinite(used):
            used = self._estimated_margin(view.price)
            source = "estimated from open positions"
        share = self._bp_share(strategy_id) * size_factor
        if math.isfinite(equity) and equity > 0 and (used + share * equity) / equity <= limit:
            return True
        today = view.now.date()
        if self._bp_refusal_logged.get(strategy_id) != today:
            self._bp_refusal_logged[strategy_id] = today
            self._ledger.audit(
                "bp-refused",
                f"{strategy_id}: entry refused: margin in use {used:.0f} ({source}) + {share:.1%} of equity "
                f"{equity:.0f} is over {limit:.0%} allowed at VIX {view.vix}",
                strategy_id,
            )
            self._log.info(f"engine: {strategy_id} entry refused by buying power (VIX {view.vix}, limit {limit:.0%})")
        return False

    def _bp_share(self, strategy_id: str) -> float:
        """The strategy's own share of equity per full-size position; the largest one of this run for a strategy
        that cannot say (its hook failed): refusing an entry too early is safer than committing too much."""
        # each hook asked once; a failing one counts as the whole account (1.0), so it is also the largest
        shares = {sid: self._calls.call(sid, "bp_share", s.bp_share, 1.0) for sid, s in sorted(self._rules.items())}
        return shares.get(strategy_id, max(shares.values(), default=1.0))

    def _estimated_margin(self, spot: Optional[float]) -> float:
        """Buying power in use when the platform cannot tell: each open position's owner estimates its own
        (Strategy.margin_estimate); a position no strategy of this run owns is estimated by the base rule."""
        total = 0.0
        for _, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED:
                continue
            conservative = conservative_margin(position, spot, self._params)
            owner = self._rules.get(position.strategy_id)
            if owner is None:
                total += conservative
                continue
            estimate = self._calls.call(
                position.strategy_id,
                "margin_estimate",
                partial(owner.margin_estimate, position, spot),
                conservative,
            )
            total += estimate
        return total


__all__ = ["TradingLoop"]
