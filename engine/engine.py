"""TradingEngine: the calls main.py makes, in LEAN's order (see .ci/DESIGN-CONTRACTS.md).

    start(now)                 initialize: load, restore machines and risk, persist provisional decisions; no orders
    on_warmup_finished(view)   holdings are real: re-bind groups, reconcile, book, act on final decisions
    on_market(view)            risk, timeouts, exits, entries (write-ahead), recovery positions closed
    on_order_event(event)      never raises: book the event on its group, then settle
    scheduled_save() / final_save()
    snapshot()                 read-only copy of the records

Promise: after a crash at any instruction, a new engine over the same store and the same broker ends with
no orphaned position, no duplicate entry and no naked leg. How: every order is written ahead (engine_orders),
every fact is booked idempotently from records + holdings (engine_recovery), and order events only ever move
records forward (core.order_groups).
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import partial
from typing import Dict, List, Optional

from core.order_groups import apply_order_event, classify_event, find_group_for_event, is_done
from core.ports import EventStatus, MarketView, OrderEventData
from core.records import OrderGroupRecord, PositionRecord, PositionStatus, StrategyState
from core.state_machine import StrategyMachine
from engine.exercise import EngineExercise
from engine.facts import in_flight_groups_of, net_fills, open_positions_of
from engine.protocols import EngineSnapshot
from engine.risk import with_point
from strategies.base import conservative_margin

RETIRED_SHOWN = 200  # retired groups (and positions) the snapshot still shows, newest kept
_FILL_STATUSES = frozenset({EventStatus.FILLED, EventStatus.PARTIALLY_FILLED})


class TradingEngine(EngineExercise):
    # ------------------------------------------------------------------------------------------- LEAN calls

    def start(self, now: datetime) -> None:
        """In initialize. Places no orders: LEAN rejects them during initialize and warm-up."""
        self._restore(now)

    def on_warmup_finished(self, view: MarketView) -> None:
        if not self._started:
            self._restore(view.now)
        self._now = view.now
        self._market_open = view.market_open
        self._view = view
        # a marker for research (crash/restart lines on the notebook's plots): every run start, audited first
        self._audit("run-start", f"run {self._broker.run_id} started at {view.now:%Y-%m-%d %H:%M} (New York)")
        self._rebind_groups()
        self._settle_missed_exercises()  # engine_exercise: assignments and expiries while down, before reconcile
        self._reconcile()
        self._trading = True
        self._update_risk(view)
        self._settle()
        self._fold_closed_positions()
        self._refresh_correlation()  # also when nothing moved: the saved score may predate this code or be lost
        self._flush()
        snapshot = self.snapshot()
        self._log.info(
            f"engine: ready; strategies {[(s, r.state.value) for s, r in sorted(snapshot.strategies.items())]}, "
            f"open positions {[p.position_id for p in snapshot.open_positions()]}"
        )

    def on_market(self, view: MarketView) -> None:
        if not self._trading:
            return
        self._now = view.now
        self._market_open = view.market_open
        self._view = view
        self._update_risk(view)
        if self._reconcile_pending and self._quiet():
            self._reconcile()
        self._cancel_overdue()
        self._settle()
        if view.market_open:
            self._flatten_settled()
            self._manage_positions(view)
            self._look_for_entries(view)

    def on_order_event(self, event: OrderEventData, now: Optional[datetime] = None) -> None:
        """Never raises (an exception here stops a LEAN algorithm): anything odd is logged and left to
        reconcile. Catches Exception only, so a simulated crash (BaseException) still ends the run.

        `now` is the algorithm's clock when LEAN delivers the event (main.py passes `self.time`). Every record
        this event creates or changes is stamped with it, not with the last bar's time: an event delivered at
        the open, before the day's first bar reached on_market, would otherwise stamp a recovery group with
        yesterday's close, and the unfilled-order timeout would cancel it at once and send it again."""
        if isinstance(now, datetime) and now > self._now:
            self._now = now
        try:
            self._book_event(event)
        except Exception as error:
            self._log.error(f"engine: order event {event!r} not booked: {error!r}")

    def scheduled_save(self) -> None:
        try:
            self._save_risk(immediate=False)
            self._store.save_dirty()
        except Exception as error:
            self._log.error(f"engine: scheduled save failed: {error!r}")

    def final_save(self) -> None:
        """The 15:45 and end-of-algorithm save: write what changed, retire finished cycles, flush."""
        if self._risk is not None and self._last_equity is not None and self._trading:
            try:
                point = self._risk.end_of_day(self._now.date(), self._last_equity)  # one drawdown point per day
                if point is not None:
                    chunk = with_point(self._risk_days.get(point.day.isoformat()[:7]), point)
                    self._risk_days = {m: c for m, c in self._risk_days.items() if c.record_name != chunk.record_name}
                    self._risk_days[chunk.month] = chunk
                    self._save(chunk, immediate=False)  # written by the scheduled save below
            except Exception as error:
                self._log.error(f"engine: end-of-day risk point failed: {error!r}")
        self.scheduled_save()
        self._retire_finished()
        self._flush()

    def end_of_run(self, now: datetime) -> None:
        """on_end_of_algorithm: book what expired by now without an event (LEAN settles expiries on the next
        tradable date, after the run), reconcile if something is pending, then the final save."""
        if self._trading:
            self._now = max(self._now, now)
            try:
                self._expire_at_end_of_run(self._now)
                if self._reconcile_pending and self._quiet():
                    self._reconcile()
            except Exception as error:
                self._log.error(f"engine: end-of-run expiries not booked: {error!r}")
        self.final_save()

    def snapshot(self) -> EngineSnapshot:
        return super().snapshot()

    def _retire_finished(self) -> None:
        """Archive every finished cycle: a CLOSED position with all its groups done, or an entry attempt that
        ended flat (cancelled, refused or rolled back) and never had a position. Retired together, in one call,
        so no group is ever left without its position (startup would rebuild the position from it)."""
        if self._submitting or not self._trading:
            return
        families: Dict[str, List[OrderGroupRecord]] = {}
        for group in self._groups.values():
            families.setdefault(group.position_id, []).append(group)
        for position_id in sorted(set(families) | set(self._positions)):
            members = families.get(position_id, [])
            if any(not is_done(g) for g in members):
                continue
            position = self._positions.get(position_id)
            if position is None and (not members or net_fills(members)):
                continue  # fills without a position: settle builds it first
            if position is not None and position.status is not PositionStatus.CLOSED:
                continue
            names = [g.record_name for g in members] + ([position.record_name] if position is not None else [])
            try:
                retired = self._store.retire(*names)
            except Exception as error:
                self._log.error(f"engine: retiring {position_id} failed: {error!r}")
                continue
            if not retired:
                self._log.error(f"engine: retiring {position_id} not durable yet; records kept")
                continue
            for group in members:
                self._groups.pop(group.group_id, None)
                self._cancel_requested.pop(group.group_id, None)
                self._retired_groups[group.group_id] = group
            if position is not None:
                self._positions.pop(position_id, None)
                self._retired_positions[position_id] = position
        # the snapshot keeps showing what this run retired (the demo and the drill read it), within bounds
        for group_id in list(self._retired_groups)[:-RETIRED_SHOWN]:
            del self._retired_groups[group_id]
        for position_id in list(self._retired_positions)[:-RETIRED_SHOWN]:
            del self._retired_positions[position_id]

    # ------------------------------------------------------------------------------------------- events

    def _book_event(self, event: OrderEventData) -> None:
        run_id = self._run_id
        if event.exercise or event.is_assignment:
            self._book_exercise(event)  # engine_exercise: exercise, assignment, expiry
            return
        group = find_group_for_event(self._groups, event, run_id)
        if group is None:
            if event.status in _FILL_STATUSES:
                self._reconcile_pending = True
                self._log.error(f"engine: fill for unknown order {event.order_id} ({event.symbol}); reconcile later")
            else:
                self._log.info(f"engine: event for unknown order {event.order_id}: {event.status}")
            return
        if event.status is EventStatus.INVALID:
            # LEAN reports a refusal as an Invalid order event carrying the brokerage's reason
            # (BrokerageTransactionHandler.HandleSubmitOrderRequest -> InvalidateOrders): every refusal is logged
            reason = event.message or "no reason given"
            self._last_refusal[group.group_id] = reason
            self._log.error(
                f"engine: broker refused order {event.order_id} ({event.symbol}) of {group.group_id}: {reason}"
            )
        updated, applied = apply_order_event(group, event, run_id, self._now)
        if not applied:
            outcome = classify_event(group, event, run_id)
            self._log.info(f"engine: event {event.order_id}/{event.event_id} on {group.group_id}: {outcome.value}")
            return
        self._set_group(updated)
        if updated.status is not group.status:
            self._log.info(f"engine: {group.group_id} {group.status.value} -> {updated.status.value}")
        self._settle()

    # ------------------------------------------------------------------------------------------- market

    def _update_risk(self, view: MarketView) -> None:
        if self._risk is None:
            return
        self._last_equity = view.equity
        before = self._risk.record.breaker
        if self._risk.update_equity(view.equity, view.now):
            after = self._risk.record.breaker
            self._save_risk(immediate=True)
            self._flush()  # a breaker must survive a crash a second later (LEAN's store flushes saves ~5 s late)
            self._alert("breaker", f"risk breaker {before.value} -> {after.value}", "risk")
        else:
            # A new peak or a new day's loss reset is written at once (not left for the scheduled save): LEAN's
            # flush timer puts it on disk within seconds, long before the next bar could measure a drawdown from
            # it. A bar that changed nothing writes nothing (same record object).
            self._save_risk(immediate=True)

    def _manage_positions(self, view: MarketView) -> None:
        """Exits: strategies' own rules, the CLOSE_ALL breaker, and positions no rules manage (adopted by
        recovery, or of a strategy this run does not know), which are closed at the first open market.

        CLOSE_ALL reaches every open position, whoever owns it and whatever state its strategy is in. A position
        that NEEDS ATTENTION (recovery gave up on orders the broker refused) is managed like any other, but gets
        at most one exit attempt a trading day: the broker refused the same kind of order minutes ago, and an
        identical order every minute would only repeat the refusal."""
        close_all = self._risk is not None and self._risk.close_all_required()
        for position_id, position in sorted(self._positions.items()):
            if position.status is not PositionStatus.OPEN or self._in_flight_for_position(position_id):
                continue
            if position.attention and self._attention_exit_day.get(position_id) == view.now.date():
                continue
            rules = self._rules.get(position.strategy_id)
            machine = self._machines.get(position.strategy_id)
            owns = (
                machine is not None
                and machine.state is StrategyState.ACTIVE
                and machine.record.position_id == position_id
            )
            if close_all:
                self._exit_position(position, "risk breaker CLOSE_ALL", machine if owns else None)
            elif self._settled_remainder(position):
                left = "what an exercise/assignment/expiry left of the structure: closing"
                self._exit_position(position, left, machine if owns else None)
            elif rules is None or machine is None:
                self._exit_position(position, "not managed by any strategy in this run: closing", None)
            elif owns:
                reason = self._calls.call(
                    position.strategy_id, "exit_reason", partial(rules.exit_reason, view, position), None
                )
                if reason:
                    self._exit_position(position, reason, machine)

    def _exit_position(self, position: PositionRecord, reason: str, machine: Optional[StrategyMachine]) -> None:
        if position.attention:
            self._attention_exit_day[position.position_id] = self._now.date()
            reason = f"{reason} (position needs attention: one exit attempt a day)"
        self._exit(position, reason, machine)

    def _look_for_entries(self, view: MarketView) -> None:
        risk = self._risk
        if risk is None or risk.close_all_required():
            return
        if any(
            p.status is PositionStatus.CLOSING and not self._in_flight_for_position(pid)
            for pid, p in self._positions.items()
        ):
            return  # a close waits for its fill price: its loss is not in the risk limits yet
        for strategy_id, machine in sorted(self._machines.items()):
            rules = self._rules.get(strategy_id)
            if rules is None or not rules.enabled or machine.state is not StrategyState.WAITING:
                continue
            # one cycle at a time: never a second entry while anything of this strategy is held or moving
            if open_positions_of(strategy_id, self._positions) or in_flight_groups_of(strategy_id, self._groups):
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
                self._enter(machine, plan, view.vix)

    def _log_skip(self, strategy_id: str, reason: str, size_factor: float) -> None:
        """An entry moment that produced no plan is logged at info with the rule's reason (and its numbers, e.g.
        a size of 0), once per reason a day; the strategy marks "not the entry day/window" routine (not news)."""
        if not reason:
            return
        key = (strategy_id, reason.split(" (", maxsplit=1)[0])  # the reason without its numbers
        if self._skips_logged.get(key) == self._now.date():
            return
        self._skips_logged[key] = self._now.date()
        self._log.info(f"engine: {strategy_id} entry skipped: {reason} (size factor {size_factor:g})")

    def _buying_power_allows(self, strategy_id: str, size_factor: float, view: MarketView) -> bool:
        """[F] BP by VIX regime: refuse the entry when the margin in use plus this plan's own share (the
        strategy's BP per position x the size factor, of equity) would exceed risk.max_bp_fraction(VIX)."""
        assert self._risk is not None
        limit = self._risk.max_bp_fraction(view.vix)
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
            self._audit(
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
        largest = max(
            (self._calls.call(sid, "bp_share", s.bp_share, 1.0) for sid, s in sorted(self._rules.items())),
            default=1.0,
        )
        strategy = self._rules.get(strategy_id)
        if strategy is None:
            return largest
        return self._calls.call(strategy_id, "bp_share", strategy.bp_share, largest)

    def _estimated_margin(self, spot: Optional[float]) -> float:
        """Buying power in use when the platform cannot tell: each open position's owner estimates its own
        (Strategy.margin_estimate); a position no strategy of this run owns is estimated by the base rule."""
        total = 0.0
        for _, position in sorted(self._positions.items()):
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


__all__ = ["TradingEngine"]
