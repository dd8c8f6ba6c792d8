"""Settling: the one place that turns facts into bookkeeping, whether they come from an order event, a restart or
a timeout. It is idempotent, so calling it again after a crash at any point finishes the job:
  1. an incomplete group whose recovery group FILLED -> RESOLVED;
  2. a finished entry (direct or through a completion) without a position -> the PositionRecord, saved;
  3. an open position whose EXIT group FILLED -> CLOSED with its realized P&L, folded into risk;
  4. a CLOSING position whose exit died with nothing filled -> OPEN again;
  5. a settled position (exercise, assignment, expiry) that holds nothing any more -> CLOSED (a crash may have
     come between the settlement and the close), then steps 1-4 again;
  6. every strategy machine moved to the state its records imply (engine.facts.target_state), by legal steps;
  7. one decision at a time for incomplete groups (complete / roll back / wait), acted on through the order
     desk, then re-plan, because acting can deliver events re-entrantly that change the picture.
Re-entrant calls (an event delivered inside a submit that `settle` itself made) only ask for another round.
Order events are booked here too (`book_order_event`): an event only ever moves its group forward.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, Dict, Mapping

from core.order_groups import apply_order_event, classify_event, find_group_for_event, mark_resolved
from core.ports import EventStatus, LogPort, OrderEventData
from core.records import OPENING_PURPOSES, GroupPurpose, GroupStatus, PositionStatus, StrategyState
from engine.facts import (
    add_note,
    attention_of,
    came_to_nothing,
    credit_received,
    is_settled,
    plan_facts_of,
    position_from_build,
    position_holdings,
    realized_pnl,
    target_state,
    unpriced_fills,
    with_leg_price,
)
from engine.ledger import Ledger
from engine.order_desk import OrderDesk
from engine.state import EngineState
from recovery.decisions import DecisionAction
from recovery.reconcile import FILL_PRICE_UNKNOWN
from recovery.startup import StartPlan, plan_start
from strategies.base import Strategy

_SETTLE_ROUNDS = 12  # each round books or submits something; far more than a real start needs
_FILL_STATUSES = frozenset({EventStatus.FILLED, EventStatus.PARTIALLY_FILLED})


class Settlement:
    def __init__(
        self,
        state: EngineState,
        ledger: Ledger,
        *,
        desk: OrderDesk,
        log: LogPort,
        rules: Mapping[str, Strategy[Any]],
        params_hash: str,
        unfilled_timeout: timedelta,
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._desk = desk
        self._log = log
        self._rules = rules
        self._params_hash = params_hash
        self._unfilled_timeout = unfilled_timeout
        self._settling = False
        self._settle_again = False

    def plan(self, *, orders_known: bool, market_open: bool) -> StartPlan:
        """The start plan over the current records (recovery.startup.plan_start). Without a risk manager (only
        before start-up restored one) it plans with entries not allowed, the conservative answer, and says so."""
        risk = self._state.risk
        if risk is None:
            self._log.error("engine: planning without a risk manager (not restored yet); entries not allowed")
            entries_allowed = False
        else:
            entries_allowed = risk.entries_allowed(None)
        return plan_start(
            {sid: m.record for sid, m in self._state.machines.items()},
            self._state.groups,
            self._state.positions,
            self._ledger.run_id,
            self._state.now,
            market_open=market_open,
            entries_allowed=entries_allowed,
            orders_known=orders_known,
        )

    def settle(self) -> None:
        if self._settling:
            self._settle_again = True
            return
        self._settling = True
        try:
            for _ in range(_SETTLE_ROUNDS):
                self._settle_again = False
                plan = self._book(self._state.market_open)
                self._sync_machines()
                acted = self._state.trading and self._act_on_one(plan)
                if not (acted or self._settle_again):
                    return
            self._log.error("engine: settling did not finish in time; continuing at the next call")
        finally:
            self._settling = False

    def _book(self, market_open: bool) -> StartPlan:
        """Steps 1-4 until nothing changes, then step 5 (close settled positions that hold nothing any more) and,
        when one closed, steps 1-4 again; returns the last plan (its decisions are current)."""
        plan = self._book_steps(market_open)
        if self._close_emptied():
            plan = self._book_steps(market_open)
        return plan

    def _book_steps(self, market_open: bool) -> StartPlan:
        """Steps 1-4 until nothing changes; returns the last plan (its decisions are current)."""
        for _ in range(_SETTLE_ROUNDS):
            plan = self.plan(orders_known=True, market_open=market_open)
            changed = False
            for group_id in plan.resolve_parents:
                self._ledger.set_group(mark_resolved(self._state.groups[group_id], self._state.now))
                self._log.info(f"engine: {group_id} resolved by its recovery group")
                changed = True
            for build in plan.positions_to_build:
                changed = self._build_position(build.position_id, plan) or changed
            for position_id in plan.positions_to_close:
                changed = self._close_position(position_id) or changed
            changed = self._reopen_failed_exits() or changed
            if not changed:
                return plan
        return self.plan(orders_known=True, market_open=market_open)

    def _build_position(self, position_id: str, plan: StartPlan) -> bool:
        build = next(b for b in plan.positions_to_build if b.position_id == position_id)
        opening = [
            g for g in self._state.groups.values() if g.position_id == position_id and g.purpose in OPENING_PURPOSES
        ]
        entry_time = max((g.updated_at for g in opening), default=self._state.now)
        root = self._state.groups.get(build.entry_group_id)
        facts = plan_facts_of(root)
        family = [g for g in self._state.groups.values() if g.position_id == position_id]
        received = credit_received(opening, facts.credit_symbols) if facts is not None else None
        built = position_from_build(build, facts, self._params_hash, entry_time, received)
        position = replace(built, attention=attention_of(family))
        self._ledger.set_position(position)
        if position.attention:
            self._ledger.alert(
                "needs-attention",
                f"position {position_id} NEEDS ATTENTION, still managed by {position.strategy_id}: "
                f"{[(c.symbol, c.quantity) for c in position.contracts]}; {position.attention}",
                f"position-{position_id}",
            )
        self._log.info(
            f"engine: position {position_id} opened: {[(c.symbol, c.quantity) for c in position.contracts]} "
            f"at {position.entry_price:+.2f}"
        )
        if facts is None:
            self._ledger.alert("plan-lost", f"position {position_id}: entry targets unknown", f"position-{position_id}")
        unpriced = sorted(unpriced_fills(opening))
        if unpriced:
            # the broker gave no average price for a fill learned from holdings: the entry price is short of it
            self._ledger.set_position(replace(position, note=add_note(position.note, FILL_PRICE_UNKNOWN)))
            self._ledger.alert(
                "fill-price-unknown",
                f"position {position_id}: entry fills of {unpriced} have no price; entry price and P&L are off",
                f"position-{position_id}",
            )
        return True

    def _close_position(self, position_id: str) -> bool:
        """Book a position whose exit FILLED: realized P&L into risk, then CLOSED. False when the close waits
        for the price of an exit fill learned from holdings (see `_exit_fills_priced`)."""
        if not self._exit_fills_priced(position_id):
            return False
        position = self._state.positions[position_id]
        pnl = realized_pnl(position_id, self._state.groups)
        closed = replace(position, status=PositionStatus.CLOSED, exit_time=self._state.now, realized_pnl=pnl)
        # Risk first: a crash after this save and before the position's leaves a FILLED exit, so the close is
        # booked again and the fold (idempotent by position id) changes nothing. The other order could leave
        # a CLOSED position whose loss never reached the risk record. One write carries the fold and the
        # correlation score without this position.
        self._state.positions[position_id] = closed
        folded = self._state.risk is not None and self._state.risk.on_position_closed(closed, self._state.now)
        correlated = self._ledger.refresh_correlation(save=False)
        self._ledger.save_risk(immediate=folded or correlated)
        self._ledger.set_position(closed)
        self._log.info(f"engine: position {position_id} closed, realized {pnl:+.2f}")
        return True

    def _exit_fills_priced(self, position_id: str) -> bool:
        """An exit that filled while we were down has no fill price (no event): reconcile prices it at the quote
        mid if the view had one. If not, price it now, because the realized P&L feeds the daily loss and the loss
        streak. After a restart LEAN has no quote yet for a contract that is no longer held, so the close waits
        (False) for the first market bars, entries wait with it (see engine/trading_loop.py `look_for_entries`);
        after `unfilled_timeout` of open market still without a quote it is booked anyway, the fill counted at 0,
        the position noted "fill price unknown" and audited."""
        exits = [
            g for g in self._state.groups.values() if g.position_id == position_id and g.purpose is GroupPurpose.EXIT
        ]
        unpriced = unpriced_fills(exits)
        if not unpriced:
            self._state.awaiting_price.pop(position_id, None)
            return True
        mids = self._ledger.quote_mids({symbol for _, symbol in unpriced})
        for group_id, symbol in sorted(unpriced):
            if symbol in mids:
                self._ledger.set_group(
                    with_leg_price(self._state.groups[group_id], symbol, mids[symbol], self._state.now)
                )
                self._ledger.audit(
                    "fill-priced",
                    f"{symbol} exit fill learned from holdings priced at the quote mid {mids[symbol]:.4f}",
                    f"group-{group_id}",
                )
        left = sorted(symbol for _, symbol in unpriced if symbol not in mids)
        if not left:
            self._state.awaiting_price.pop(position_id, None)
            return True
        if not (self._state.trading and self._state.market_open):
            return False  # warm-up or a closed market: quotes come with the next open market
        since = self._state.awaiting_price.setdefault(position_id, self._state.now)
        if self._state.now - since < self._unfilled_timeout:
            return False
        self._state.awaiting_price.pop(position_id, None)
        position = self._state.positions[position_id]
        self._ledger.set_position(replace(position, note=add_note(position.note, FILL_PRICE_UNKNOWN)))
        self._ledger.alert(
            "fill-price-unknown",
            f"position {position_id}: exit fills of {left} learned from holdings have no price and no quote came; "
            "realized P&L counts them at 0",
            f"position-{position_id}",
        )
        return True

    def _reopen_failed_exits(self) -> bool:
        changed = False
        for position_id, position in sorted(self._state.positions.items()):
            if position.status is not PositionStatus.CLOSING or self._state.in_flight_for_position(position_id):
                continue
            exits = [
                g
                for g in self._state.groups.values()
                if g.position_id == position_id and g.purpose is GroupPurpose.EXIT
            ]
            if any(g.status is GroupStatus.FILLED for g in exits):
                continue  # step 3 closes it
            self._ledger.set_position(replace(position, status=PositionStatus.OPEN))
            self._log.info(f"engine: exit of {position_id} did not happen; position open again")
            changed = True
        return changed

    def _sync_machines(self) -> None:
        for strategy_id, machine in sorted(self._state.machines.items()):
            if strategy_id not in self._rules or machine.state is StrategyState.ERROR:
                continue
            target = target_state(strategy_id, self._state.groups, self._state.positions)
            current = machine.state
            if current is target.state and not (
                current is StrategyState.ACTIVE and machine.record.position_id != target.position_id
            ):
                continue
            why = f"records say: {target.why}"
            changes: Dict[str, object] = {"position_id": target.position_id}
            if target.group_id is not None:
                changes["group_id"] = target.group_id
            if current is StrategyState.ENTERING and came_to_nothing(machine.record.position_id, self._state.groups):
                # the entry never reached a fill (refused, cancelled unfilled, or never sent before a crash): the
                # day's or cycle's entry did not happen, so the rules may try again inside their window
                changes["last_entry_day"] = None
                why = f"{why}; the entry came to nothing, so it does not count as this cycle's entry"
            direct = {
                (StrategyState.ENTERING, StrategyState.ACTIVE),
                (StrategyState.ENTERING, StrategyState.WAITING),
                (StrategyState.EXITING, StrategyState.ACTIVE),
                (StrategyState.ACTIVE, StrategyState.EXITING),
                (StrategyState.WAITING, StrategyState.ENTERING),
                (StrategyState.CLOSED, StrategyState.WAITING),
            }
            if current is StrategyState.EXITING and target.state is StrategyState.WAITING:
                self._ledger.move(machine, StrategyState.CLOSED, f"exit filled; {why}", **changes)
            elif (current, target.state) not in direct and current is not StrategyState.RECOVERING:
                self._ledger.move(machine, StrategyState.RECOVERING, f"state {current.value} disagrees; {why}")
            self._ledger.move(machine, target.state, why, **changes)

    def _act_on_one(self, plan: StartPlan) -> bool:
        """Act on the first decision that needs an order; persist WAIT decisions. True when an order was sent."""
        for decision in plan.decisions:
            if decision.group_id in self._state.submitting:
                continue
            self._desk.act_on_decision(decision)
            # an order held back for prices (engine/order_desk.py `quotes_missing`) is retried at the next call
            if decision.action is not DecisionAction.WAIT and decision.group_id not in self._state.awaiting_quote:
                return True
        return False

    def _close_emptied(self) -> bool:
        closed = False
        groups = self._state.groups.values()
        for position_id, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED or self._state.in_flight_for_position(position_id):
                continue
            if is_settled(position, groups) and not position_holdings(position, groups):
                closed = self._close_position(position_id) or closed
        return closed

    def book_order_event(self, event: OrderEventData) -> None:
        """Book an order event (not an exercise's: engine/exercise.py) on its group, then settle. An event only
        moves its group forward; one for an unknown order is logged (a fill asks for a reconcile)."""
        run_id = self._ledger.run_id
        group = find_group_for_event(self._state.groups, event, run_id)
        if group is None:
            if event.status in _FILL_STATUSES:
                self._state.reconcile_pending = True
                self._log.error(f"engine: fill for unknown order {event.order_id} ({event.symbol}); reconcile later")
            else:
                self._log.info(f"engine: event for unknown order {event.order_id}: {event.status}")
            return
        if event.status is EventStatus.INVALID:
            # LEAN reports a refusal as an Invalid order event carrying the brokerage's reason
            # (BrokerageTransactionHandler.HandleSubmitOrderRequest -> InvalidateOrders): every refusal is logged
            reason = event.message or "no reason given"
            self._state.last_refusal[group.group_id] = reason
            self._log.error(
                f"engine: broker refused order {event.order_id} ({event.symbol}) of {group.group_id}: {reason}"
            )
        updated, applied = apply_order_event(group, event, run_id, self._state.now)
        if not applied:
            outcome = classify_event(group, event, run_id)
            self._log.info(f"engine: event {event.order_id}/{event.event_id} on {group.group_id}: {outcome.value}")
            return
        self._ledger.set_group(updated)
        if updated.status is not group.status:
            self._log.info(f"engine: {group.group_id} {group.status.value} -> {updated.status.value}")
        self.settle()


__all__ = ["Settlement"]
