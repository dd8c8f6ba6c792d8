"""Start-up recovery: make the records agree with the broker, through the pure recovery/ functions.

`restore` (in initialize: no orders) loads every record, restores the strategy machines and risk and persists
the provisional start plan (recovery.startup.plan_start). Once holdings are real (after warm-up) the engine
calls `rebind_groups` (groups of earlier runs bound to the orders that survived them), then `reconcile`
(recovery.reconcile: records against holdings; also run mid-run when something moved without an event and no
order can still fill, see `quiet`) and `fold_closed_positions`. Acting on the plan is settlement's job
(engine/settlement.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional

from core.order_groups import adopt_run, is_in_flight, open_legs, remaining_quantity, with_decision
from core.params import Params
from core.ports import BrokerPort, LogPort, SubmittedOrder
from core.records import OrderGroupRecord, PositionStatus, RiskRecord, StrategyState, StrategyStateRecord
from core.state_machine import StrategyMachine
from engine.ledger import Ledger
from engine.order_desk import OrderDesk
from engine.protocols import EngineStore, RiskLike
from engine.settlement import Settlement
from engine.state import EngineState
from recovery.reconcile import apply_report, reconcile
from recovery.startup import StartPlan
from strategies.base import Strategy

RiskFactory = Callable[[Optional[RiskRecord], Params, datetime], RiskLike]
# reconcile findings that are the normal outcome of a crash mid-trade (logged as info, audited); the other kinds
# (adopted, orphan-cleaned, quantity-mismatch, unknown-holding) mean something went wrong: error + audit
NORMAL_RECONCILE_KINDS = frozenset({"missed-fill", "fill-priced"})


def default_risk(record: Optional[RiskRecord], params: Params, now: datetime) -> RiskLike:
    from engine.risk import RiskManager  # noqa: PLC0415

    return RiskManager(record, params, now)


class StartupRecovery:
    def __init__(
        self,
        state: EngineState,
        ledger: Ledger,
        *,
        desk: OrderDesk,
        settlement: Settlement,
        store: EngineStore,
        broker: BrokerPort,
        log: LogPort,
        params: Params,
        rules: Mapping[str, Strategy[Any]],
        params_hash: str,
        risk_factory: RiskFactory,
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._desk = desk
        self._settlement = settlement
        self._store = store
        self._broker = broker
        self._log = log
        self._params = params
        self._rules = rules
        self._params_hash = params_hash
        self._risk_factory = risk_factory

    def restore(self, now: datetime) -> None:
        """Load every record, restore machines and risk, plan provisionally. No orders (LEAN is initializing)."""
        self._state.now = now
        self._state.started_at = now  # this process's run identity (Ledger.run_id)
        try:
            loaded = self._store.load_all()
            strategies = dict(loaded.strategies)
            self._state.groups = dict(loaded.groups)
            self._state.positions = dict(loaded.positions)
            risk_record = loaded.risk
            self._state.risk_days = dict(loaded.risk_days)  # checked by the loader (persistence.validation)
            lost, stale = tuple(loaded.lost), tuple(loaded.stale)
        except Exception as error:
            # Start empty; reconcile adopts whatever holdings show, so nothing held is left unmanaged.
            self._ledger.alert(
                "load-failed", f"loading saved state failed ({error!r}); starting empty, reconcile decides"
            )
            strategies, risk_record, lost, stale = {}, None, (), ()
        if lost or stale:
            # the store has logged and audited them, once per load in one batch (per record it cost O(records x
            # audit size) and repeated every line); what they held at the broker is settled by reconcile
            self._log.info(f"engine: {len(lost)} lost and {len(stale)} stale record(s); holdings will be reconciled")
        self._state.risk = self._risk_factory(risk_record, self._params, now)
        self._state.saved_risk = risk_record
        if risk_record is None:
            self._ledger.save_risk(immediate=False)
        else:
            self._log.info(
                f"engine: risk restored (breaker {risk_record.breaker.value}, peak {risk_record.peak_equity:.2f})"
            )
        for strategy_id in self._rules:
            self._state.machines[strategy_id] = self._restore_machine(strategy_id, strategies.get(strategy_id), now)
        for strategy_id in sorted(set(strategies) - set(self._rules)):
            machine = StrategyMachine(strategies[strategy_id], self._ledger.persist_strategy)
            self._state.machines[strategy_id] = machine
            self._ledger.alert(
                "unknown-strategy",
                f"saved strategy {strategy_id!r} has no rules here; set to ERROR, "
                "its positions are closed at the next market open",
                machine.record.record_name,
            )
            self._ledger.move(machine, StrategyState.ERROR, "no rules for this strategy in this run")
        plan = self._settlement.plan(orders_known=False, market_open=True)
        self._log_plan(plan)
        for decision in plan.decisions:
            group = self._state.groups[decision.group_id]
            text = f"PROVISIONAL {decision.text}"
            self._ledger.set_group(with_decision(group, text, now))
            # a normal start-up step after a crash mid-trade (info); a failed recovery is an error elsewhere
            self._log.info(f"engine: group {group.group_id} incomplete: {text}")
            self._ledger.audit("recovery", f"group {group.group_id} incomplete: {text}", f"group-{group.group_id}")
        self._state.started = True

    def _restore_machine(
        self, strategy_id: str, record: Optional[StrategyStateRecord], now: datetime
    ) -> StrategyMachine:
        if record is None:
            machine = StrategyMachine.fresh(strategy_id, now, self._params_hash, self._ledger.persist_strategy)
            self._ledger.save(machine.record, immediate=False)
            return machine
        machine = StrategyMachine(record, self._ledger.persist_strategy)
        if record.state not in StrategyState.__members__.values():
            self._ledger.alert("bad-state", f"{strategy_id}: saved state {record.state!r} unknown; recovering")
            machine = StrategyMachine(replace(record, state=StrategyState.ERROR), self._ledger.persist_strategy)
        if machine.state is StrategyState.ERROR:
            # a restart is the human's go-ahead: start-up recovery takes the strategy over
            self._ledger.move(machine, StrategyState.RECOVERING, "restart after ERROR: recovery takes over")
        if record.params_hash and record.params_hash != self._params_hash:
            self._log.info(
                f"engine: {strategy_id} was saved under params {record.params_hash}, now {self._params_hash}"
            )
        return machine

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

    def rebind_groups(self) -> None:
        """Groups of earlier runs that were still moving: bind them to the orders that survived (new LEAN ids,
        found by broker id or tag); legs without a surviving order are closed (adopt_run)."""
        run_id = self._ledger.run_id
        open_ids = set(self._desk.open_order_ids())
        for group_id in sorted(self._state.groups):
            group = self._state.groups[group_id]
            # every group still moving is looked up at the broker, whatever run it names: no group of this process
            # exists yet, and the saved order ids belong to a dead process (even under the same algorithm id)
            if not is_in_flight(group):
                continue
            survivors = self._surviving_orders(group, open_ids)
            rebound = adopt_run(group, run_id, survivors, self._state.now)
            self._ledger.set_group(rebound)
            message = f"{group_id} re-bound to this run with {len(survivors)} live order(s)"
            self._log.info(f"engine: {message}")
            self._ledger.audit("rebind", message, f"group-{group_id}")  # a recovery step: the charts count it
        self._cancel_unbound_orders(open_ids)

    def _cancel_unbound_orders(self, open_ids: set[int]) -> None:
        """An open order no group claims (its broker id was lost with unflushed saves, and the broker dropped
        our tag) could fill on top of a completion: cancel it. Whatever it filled meanwhile reaches the records
        through holdings (reconcile adopts it and the engine closes it)."""
        run_id = self._ledger.run_id
        bound = {
            oid for g in self._state.groups.values() if g.run_id == run_id for leg in g.legs for oid in leg.order_ids
        }
        for order_id in sorted(open_ids - bound):
            self._ledger.alert("orphan-order", f"open order {order_id} belongs to no saved group: cancelled")
            self._desk.cancel_orders([order_id])
            self._state.reconcile_pending = True

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

    def reconcile(self) -> None:
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
        unfilled = {leg.symbol for g in self._state.groups.values() for leg in g.legs if remaining_quantity(leg)}
        report = reconcile(
            self._state.positions, self._state.groups, holdings, average_prices, self._ledger.quote_mids(unfilled)
        )
        self._state.reconcile_pending = False
        if not report.actions:
            return
        result = apply_report(self._state.positions, self._state.groups, report, self._state.now)
        self._state.positions, self._state.groups = dict(result.positions), dict(result.groups)
        for group_id in result.changed_groups:
            self._ledger.save(self._state.groups[group_id])
        for position_id in result.changed_positions:
            self._ledger.save(self._state.positions[position_id])
        self._ledger.refresh_correlation()  # adoption or an orphan cleaned changes what is held
        for note in result.audit:
            # fills booked from holdings are what a crash mid-trade normally leaves; anything else means the
            # records and the broker disagreed in a way write-ahead should have prevented
            if note.kind in NORMAL_RECONCILE_KINDS:
                self._log.info(f"engine: reconcile {note.kind}: {note.message}")
                self._ledger.audit(note.kind, note.message, note.ref)
            else:
                self._ledger.alert(note.kind, f"reconcile {note.kind}: {note.message}", note.ref)

    def quiet(self) -> bool:
        """No order can still fill (so holdings and booked fills must agree): safe to reconcile mid-run."""
        return not self._state.submitting and not any(open_legs(g) for g in self._state.groups.values())

    def fold_closed_positions(self) -> None:
        """A CLOSED position whose realized P&L never reached the risk record (the process died between the two
        saves and only the position's reached the disk): fold it now; idempotent by position id. A position
        closed without a figure (an orphan cleaned by reconcile) is left out: a 0 would end a loss streak."""
        if self._state.risk is None:
            return
        folded = False
        for _, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED and position.realized_pnl is not None:
                folded = self._state.risk.on_position_closed(position, self._state.now) or folded
        if folded:
            self._log.info("engine: closed positions folded into risk after a restart")
            self._ledger.save_risk(immediate=True)


__all__ = ["NORMAL_RECONCILE_KINDS", "RiskFactory", "StartupRecovery", "default_risk"]
