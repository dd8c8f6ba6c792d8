"""Start-up recovery and settling: make the records agree with the broker and with each other, then act.

`_settle` is the one place that turns facts into bookkeeping, whether they come from an order event, a
restart or a timeout; it is idempotent, so calling it again after a crash at any point finishes the job:
  1. an incomplete group whose recovery group FILLED -> RESOLVED;
  2. a finished entry (direct or through a completion) without a position -> the PositionRecord, saved;
  3. an open position whose EXIT group FILLED -> CLOSED with its realized P&L, folded into risk;
  4. a CLOSING position whose exit died with nothing filled -> OPEN again;
  5. every strategy machine moved to the state its records imply (engine_facts.target_state), by legal steps;
  6. one decision at a time for incomplete groups (complete / roll back / wait), then re-plan, because acting
     can deliver events re-entrantly that change the picture.
Re-entrant calls (an event delivered inside a submit that `_settle` itself made) only ask for another round.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Dict, List, Optional

from core.order_groups import (
    adopt_run,
    is_in_flight,
    mark_resolved,
    open_legs,
    remaining_quantity,
    with_decision,
)
from core.ports import SubmittedOrder
from core.records import (
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionStatus,
    StrategyState,
    StrategyStateRecord,
)
from core.state_machine import StrategyMachine
from engine.facts import (
    add_note,
    attention_of,
    credit_received,
    plan_facts_of,
    position_from_build,
    realized_pnl,
    target_state,
    unpriced_fills,
    with_leg_price,
)
from engine.orders import EngineOrders
from recovery.decisions import DecisionAction
from recovery.reconcile import FILL_PRICE_UNKNOWN, apply_report, reconcile
from recovery.startup import StartPlan, plan_start

# reconcile findings that are the normal outcome of a crash mid-trade (logged as info, audited); the other kinds
# (adopted, orphan-cleaned, quantity-mismatch, unknown-holding) mean something went wrong: error + audit
NORMAL_RECONCILE_KINDS = frozenset({"missed-fill", "fill-priced"})
_SETTLE_ROUNDS = 12  # each round books or submits something; far more than a real start needs


class EngineRecovery(EngineOrders):
    _settling = False
    _settle_again = False

    # ------------------------------------------------------------------------------------------- start

    def _restore(self, now: datetime) -> None:
        """Load every record, restore machines and risk, plan provisionally. No orders (LEAN is initializing)."""
        self._now = now
        self._started_at = now  # this process's run identity (_run_id)
        try:
            loaded = self._store.load_all()
            strategies = dict(loaded.strategies)
            self._groups = dict(loaded.groups)
            self._positions = dict(loaded.positions)
            risk_record = loaded.risk
            self._risk_days = dict(loaded.risk_days)  # checked by the loader (persistence.validation)
            lost, stale = tuple(loaded.lost), tuple(loaded.stale)
        except Exception as error:
            # Start empty; reconcile adopts whatever holdings show, so nothing held is left unmanaged.
            self._alert("load-failed", f"loading saved state failed ({error!r}); starting empty, reconcile decides")
            strategies, risk_record, lost, stale = {}, None, (), ()
        if lost or stale:
            # the store has logged and audited them, once per load in one batch (per record it cost O(records x
            # audit size) and repeated every line); what they held at the broker is settled by reconcile
            self._log.info(f"engine: {len(lost)} lost and {len(stale)} stale record(s); holdings will be reconciled")
        self._risk = self._risk_factory(risk_record, self._params, now)
        self._saved_risk = risk_record
        if risk_record is None:
            self._save_risk(immediate=False)
        else:
            self._log.info(
                f"engine: risk restored (breaker {risk_record.breaker.value}, peak {risk_record.peak_equity:.2f})"
            )
        for strategy_id in self._rules:
            self._machines[strategy_id] = self._restore_machine(strategy_id, strategies.get(strategy_id), now)
        for strategy_id in sorted(set(strategies) - set(self._rules)):
            machine = StrategyMachine(strategies[strategy_id], self._persist_strategy)
            self._machines[strategy_id] = machine
            self._alert(
                "unknown-strategy",
                f"saved strategy {strategy_id!r} has no rules here; set to ERROR, "
                "its positions are closed at the next market open",
                machine.record.record_name,
            )
            self._move(machine, StrategyState.ERROR, "no rules for this strategy in this run")
        plan = self._plan(orders_known=False, market_open=True)
        self._log_plan(plan)
        for decision in plan.decisions:
            group = self._groups[decision.group_id]
            text = f"PROVISIONAL {decision.text}"
            self._set_group(with_decision(group, text, now))
            # a normal start-up step after a crash mid-trade (info); a failed recovery is an error elsewhere
            self._log.info(f"engine: group {group.group_id} incomplete: {text}")
            self._audit("recovery", f"group {group.group_id} incomplete: {text}", f"group-{group.group_id}")
        self._started = True

    def _restore_machine(
        self, strategy_id: str, record: Optional[StrategyStateRecord], now: datetime
    ) -> StrategyMachine:
        if record is None:
            machine = StrategyMachine.fresh(strategy_id, now, self._params_hash, self._persist_strategy)
            self._save(machine.record, immediate=False)
            return machine
        machine = StrategyMachine(record, self._persist_strategy)
        if record.state not in StrategyState.__members__.values():
            self._alert("bad-state", f"{strategy_id}: saved state {record.state!r} unknown; recovering")
            machine = StrategyMachine(replace(record, state=StrategyState.ERROR), self._persist_strategy)
        if machine.state is StrategyState.ERROR:
            # a restart is the human's go-ahead: start-up recovery takes the strategy over
            self._move(machine, StrategyState.RECOVERING, "restart after ERROR: recovery takes over")
        if record.params_hash and record.params_hash != self._params_hash:
            self._log.info(
                f"engine: {strategy_id} was saved under params {record.params_hash}, now {self._params_hash}"
            )
        return machine

    def _plan(self, *, orders_known: bool, market_open: bool) -> StartPlan:
        assert self._risk is not None
        return plan_start(
            {sid: m.record for sid, m in self._machines.items()},
            self._groups,
            self._positions,
            self._run_id,
            self._now,
            market_open=market_open,
            entries_allowed=self._risk.entries_allowed(None),
            orders_known=orders_known,
        )

    def _log_plan(self, plan: StartPlan) -> None:
        if not plan.needs_attention:
            self._log.info("engine: clean start, nothing to recover")
            return
        self._log.info(
            f"engine: start plan: rebind {list(plan.rebind)}, resolve {list(plan.resolve_parents)}, "
            f"build {[b.position_id for b in plan.positions_to_build]}, close {list(plan.positions_to_close)}"
        )
        for stuck in plan.stuck:
            self._log.error(f"engine: strategy {stuck.strategy_id} stuck: {stuck.reason}")

    # ------------------------------------------------------------------------------------------- warm-up done

    def _rebind_groups(self) -> None:
        """Groups of earlier runs that were still moving: bind them to the orders that survived (new LEAN ids,
        found by broker id or tag); legs without a surviving order are closed (adopt_run)."""
        run_id = self._run_id
        open_ids = set(self._open_order_ids())
        for group_id in sorted(self._groups):
            group = self._groups[group_id]
            # every group still moving is looked up at the broker, whatever run it names: no group of this process
            # exists yet, and the saved order ids belong to a dead process (even under the same algorithm id)
            if not is_in_flight(group):
                continue
            survivors = self._surviving_orders(group, open_ids)
            rebound = adopt_run(group, run_id, survivors, self._now)
            self._set_group(rebound)
            self._log.info(f"engine: {group_id} re-bound to this run with {len(survivors)} live order(s)")
        self._cancel_unbound_orders(open_ids)

    def _cancel_unbound_orders(self, open_ids: set[int]) -> None:
        """An open order no group claims (its broker id was lost with unflushed saves, and the broker dropped
        our tag) could fill on top of a completion: cancel it. Whatever it filled meanwhile reaches the records
        through holdings (reconcile adopts it and the engine closes it)."""
        run_id = self._run_id
        bound = {oid for g in self._groups.values() if g.run_id == run_id for leg in g.legs for oid in leg.order_ids}
        for order_id in sorted(open_ids - bound):
            self._alert("orphan-order", f"open order {order_id} belongs to no saved group: cancelled")
            self._cancel_orders([order_id])
            self._reconcile_pending = True

    def _surviving_orders(self, group: OrderGroupRecord, open_ids: set[int]) -> List[SubmittedOrder]:
        found: Dict[int, SubmittedOrder] = {}
        for leg in group.legs:
            for broker_id in leg.broker_ids:
                try:
                    ids = self._broker.order_ids_for_broker_id(broker_id)
                except Exception as error:
                    self._log.error(f"engine: looking up broker id {broker_id} failed: {error!r}")
                    continue
                for order_id in ids:
                    if order_id in open_ids:
                        found[order_id] = SubmittedOrder(leg.symbol, order_id, (broker_id,))
        try:
            for order in self._broker.open_orders_with_tag(group.group_id):
                if order.order_id in open_ids:
                    found.setdefault(order.order_id, order)
        except Exception as error:
            self._log.error(f"engine: looking up orders tagged {group.group_id} failed: {error!r}")
        return [found[oid] for oid in sorted(found)]

    def _reconcile(self) -> None:
        """Compare the records with holdings and apply the differences (saved at once, noted in the audit)."""
        try:
            holdings = dict(self._broker.holdings())
        except Exception as error:
            self._log.error(f"engine: holdings unavailable, reconcile skipped: {error!r}")
            return
        try:
            average_prices = dict(self._broker.average_prices())
        except Exception as error:
            self._log.error(f"engine: average prices unavailable, missed fills may stay unpriced: {error!r}")
            average_prices = {}
        unfilled = {leg.symbol for g in self._groups.values() for leg in g.legs if remaining_quantity(leg)}
        report = reconcile(self._positions, self._groups, holdings, average_prices, self._quote_mids(unfilled))
        self._reconcile_pending = False
        if not report.actions:
            return
        result = apply_report(self._positions, self._groups, report, self._now)
        self._positions, self._groups = dict(result.positions), dict(result.groups)
        for group_id in result.changed_groups:
            self._save(self._groups[group_id])
        for position_id in result.changed_positions:
            self._save(self._positions[position_id])
        self._refresh_correlation()  # adoption or an orphan cleaned changes what is held
        for note in result.audit:
            # fills booked from holdings are what a crash mid-trade normally leaves; anything else means the
            # records and the broker disagreed in a way write-ahead should have prevented
            if note.kind in NORMAL_RECONCILE_KINDS:
                self._log.info(f"engine: reconcile {note.kind}: {note.message}")
                self._audit(note.kind, note.message, note.ref)
            else:
                self._alert(note.kind, f"reconcile {note.kind}: {note.message}", note.ref)

    def _quiet(self) -> bool:
        """No order can still fill (so holdings and booked fills must agree): safe to reconcile mid-run."""
        return not self._submitting and not any(open_legs(g) for g in self._groups.values())

    # ------------------------------------------------------------------------------------------- settling

    def _settle(self) -> None:
        if self._settling:
            self._settle_again = True
            return
        self._settling = True
        try:
            for _ in range(_SETTLE_ROUNDS):
                self._settle_again = False
                plan = self._book(self._market_open)
                self._sync_machines()
                acted = self._trading and self._act_on_one(plan)
                if not (acted or self._settle_again):
                    return
            self._log.error("engine: settling did not finish in time; continuing at the next call")
        finally:
            self._settling = False

    def _book(self, market_open: bool) -> StartPlan:
        """Steps 1-4 until nothing changes; returns the last plan (its decisions are current)."""
        for _ in range(_SETTLE_ROUNDS):
            plan = self._plan(orders_known=True, market_open=market_open)
            changed = False
            for group_id in plan.resolve_parents:
                self._set_group(mark_resolved(self._groups[group_id], self._now))
                self._log.info(f"engine: {group_id} resolved by its recovery group")
                changed = True
            for build in plan.positions_to_build:
                changed = self._build_position(build.position_id, plan) or changed
            for position_id in plan.positions_to_close:
                changed = self._close_position(position_id) or changed
            changed = self._reopen_failed_exits() or changed
            if not changed:
                return plan
        return self._plan(orders_known=True, market_open=market_open)

    def _build_position(self, position_id: str, plan: StartPlan) -> bool:
        build = next(b for b in plan.positions_to_build if b.position_id == position_id)
        opening = [
            g
            for g in self._groups.values()
            if g.position_id == position_id and g.purpose in (GroupPurpose.ENTRY, GroupPurpose.COMPLETION)
        ]
        entry_time = max((g.updated_at for g in opening), default=self._now)
        root = self._groups.get(build.entry_group_id)
        facts = plan_facts_of(root)
        family = [g for g in self._groups.values() if g.position_id == position_id]
        received = credit_received(opening, facts.credit_symbols) if facts is not None else None
        built = position_from_build(build, facts, self._params_hash, entry_time, received)
        position = replace(built, attention=attention_of(family))
        self._set_position(position)
        if position.attention:
            self._alert(
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
            self._alert("plan-lost", f"position {position_id}: entry targets unknown", f"position-{position_id}")
        unpriced = sorted(unpriced_fills(opening))
        if unpriced:
            # the broker gave no average price for a fill learned from holdings: the entry price is short of it
            self._set_position(replace(position, note=add_note(position.note, FILL_PRICE_UNKNOWN)))
            self._alert(
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
        position = self._positions[position_id]
        pnl = realized_pnl(position_id, self._groups)
        closed = replace(position, status=PositionStatus.CLOSED, exit_time=self._now, realized_pnl=pnl)
        # Risk first: a crash after this save and before the position's leaves a FILLED exit, so the close is
        # booked again and the fold (idempotent by position id) changes nothing. The other order could leave
        # a CLOSED position whose loss never reached the risk record. One write carries the fold and the
        # correlation score without this position.
        self._positions[position_id] = closed
        folded = self._risk is not None and self._risk.on_position_closed(closed, self._now)
        correlated = self._refresh_correlation(save=False)
        self._save_risk(immediate=folded or correlated)
        self._set_position(closed)
        self._log.info(f"engine: position {position_id} closed, realized {pnl:+.2f}")
        return True

    def _exit_fills_priced(self, position_id: str) -> bool:
        """An exit that filled while we were down has no fill price (no event): reconcile prices it at the quote
        mid if the view had one. If not, price it now, because the realized P&L feeds the daily loss and the loss
        streak. After a restart LEAN has no quote yet for a contract that is no longer held, so the close waits
        (False) for the first market bars, entries wait with it (see _look_for_entries); after `unfilled_timeout`
        of open market still without a quote it is booked anyway, the fill counted at 0, the position noted
        "fill price unknown" and audited."""
        exits = [g for g in self._groups.values() if g.position_id == position_id and g.purpose is GroupPurpose.EXIT]
        unpriced = unpriced_fills(exits)
        if not unpriced:
            self._awaiting_price.pop(position_id, None)
            return True
        mids = self._quote_mids({symbol for _, symbol in unpriced})
        for group_id, symbol in sorted(unpriced):
            if symbol in mids:
                self._set_group(with_leg_price(self._groups[group_id], symbol, mids[symbol], self._now))
                self._audit(
                    "fill-priced",
                    f"{symbol} exit fill learned from holdings priced at the quote mid {mids[symbol]:.4f}",
                    f"group-{group_id}",
                )
        left = sorted(symbol for _, symbol in unpriced if symbol not in mids)
        if not left:
            self._awaiting_price.pop(position_id, None)
            return True
        if not (self._trading and self._market_open):
            return False  # warm-up or a closed market: quotes come with the next open market
        since = self._awaiting_price.setdefault(position_id, self._now)
        if self._now - since < self._unfilled_timeout:
            return False
        self._awaiting_price.pop(position_id, None)
        position = self._positions[position_id]
        self._set_position(replace(position, note=add_note(position.note, FILL_PRICE_UNKNOWN)))
        self._alert(
            "fill-price-unknown",
            f"position {position_id}: exit fills of {left} learned from holdings have no price and no quote came; "
            "realized P&L counts them at 0",
            f"position-{position_id}",
        )
        return True

    def _fold_closed_positions(self) -> None:
        """A CLOSED position whose realized P&L never reached the risk record (the process died between the two
        saves and only the position's reached the disk): fold it now; idempotent by position id. A position
        closed without a figure (an orphan cleaned by reconcile) is left out: a 0 would end a loss streak."""
        if self._risk is None:
            return
        folded = False
        for _, position in sorted(self._positions.items()):
            if position.status is PositionStatus.CLOSED and position.realized_pnl is not None:
                folded = self._risk.on_position_closed(position, self._now) or folded
        if folded:
            self._log.info("engine: closed positions folded into risk after a restart")
            self._save_risk(immediate=True)

    def _reopen_failed_exits(self) -> bool:
        changed = False
        for position_id, position in sorted(self._positions.items()):
            if position.status is not PositionStatus.CLOSING or self._in_flight_for_position(position_id):
                continue
            exits = [
                g for g in self._groups.values() if g.position_id == position_id and g.purpose is GroupPurpose.EXIT
            ]
            if any(g.status is GroupStatus.FILLED for g in exits):
                continue  # step 3 closes it
            self._set_position(replace(position, status=PositionStatus.OPEN))
            self._log.info(f"engine: exit of {position_id} did not happen; position open again")
            changed = True
        return changed

    def _sync_machines(self) -> None:
        for strategy_id, machine in sorted(self._machines.items()):
            if strategy_id not in self._rules or machine.state is StrategyState.ERROR:
                continue
            target = target_state(strategy_id, self._groups, self._positions)
            current = machine.state
            if current is target.state and not (
                current is StrategyState.ACTIVE and machine.record.position_id != target.position_id
            ):
                continue
            why = f"records say: {target.why}"
            changes: Dict[str, object] = {"position_id": target.position_id}
            if target.group_id is not None:
                changes["group_id"] = target.group_id
            direct = {
                (StrategyState.ENTERING, StrategyState.ACTIVE),
                (StrategyState.ENTERING, StrategyState.WAITING),
                (StrategyState.EXITING, StrategyState.ACTIVE),
                (StrategyState.ACTIVE, StrategyState.EXITING),
                (StrategyState.WAITING, StrategyState.ENTERING),
                (StrategyState.CLOSED, StrategyState.WAITING),
            }
            if current is StrategyState.EXITING and target.state is StrategyState.WAITING:
                self._move(machine, StrategyState.CLOSED, f"exit filled; {why}", **changes)
            elif (current, target.state) not in direct and current is not StrategyState.RECOVERING:
                self._move(machine, StrategyState.RECOVERING, f"state {current.value} disagrees; {why}")
            self._move(machine, target.state, why, **changes)

    def _act_on_one(self, plan: StartPlan) -> bool:
        """Act on the first decision that needs an order; persist WAIT decisions. True when an order was sent."""
        for decision in plan.decisions:
            if decision.group_id in self._submitting:
                continue
            self._act_on_decision(decision)
            # an order held back for prices (engine_orders._quotes_missing) is retried at the next call
            if decision.action is not DecisionAction.WAIT and decision.group_id not in self._awaiting_quote:
                return True
        return False


__all__ = ["EngineRecovery"]
