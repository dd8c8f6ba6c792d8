"""TradingEngine: the calls main.py makes, in LEAN's order, over parts that each do one job.

    start(now)                 initialize: load, restore machines and risk, persist provisional decisions; no orders
    on_warmup_finished(view)   holdings are real: re-bind groups, reconcile, book, act on final decisions
    on_market(view)            risk, timeouts, exits, entries (write-ahead), recovery positions closed
    on_order_event(event)      never raises: book the event on its group, then settle
    scheduled_save() / final_save() / end_of_run(now)
    snapshot()                 read-only copy of the records

Promise: after a crash at any instruction, a new engine over the same store and the same broker ends with
no orphaned position, no duplicate entry and no naked leg. How: every order is written ahead (engine/order_desk.py),
every fact is booked idempotently from records + holdings (engine/settlement.py, engine/startup.py,
engine/exercise.py), and order events only ever move records forward (core.order_groups).

The parts, none of which inherits from another; they share one EngineState (engine/state.py) and keep no copy
of it:
  Ledger           engine/ledger.py       save, flush, audit, alert, strategy moves, retiring finished cycles
  OrderDesk        engine/order_desk.py   write-ahead entries, exits and recovery orders; submission; cancels
  Settlement       engine/settlement.py   the idempotent settle loop and the booking of order events
  StartupRecovery  engine/startup.py      restore, re-bind, reconcile (the pure recovery/ functions)
  ExerciseBooking  engine/exercise.py     exercise, assignment and expiry, and flattening what they leave
  TradingLoop      engine/trading_loop.py risk, exits and entries on every market view
  LimitEntries     engine/limit_entries.py entries as combo limits at mid, walked toward the far side
The desk and the exercise booking must settle after they act, and settling acts through the desk: they are
handed `self._settle`, a method of this class that calls the Settlement built right after them.
Nothing here starts threads (main.py holds an RLock around every call).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Dict, Optional, Sequence, Tuple

from core.params import Params, rules_hash
from core.ports import BrokerPort, LogPort, MarketView, OrderEventData
from core.records import DrawdownPoint, OrderGroupRecord, PositionRecord, RiskDaysRecord
from engine.exercise import ExerciseBooking
from engine.ledger import Ledger
from engine.limit_entries import LimitEntries
from engine.order_desk import OrderDesk
from engine.protocols import UNFILLED_ORDER_TIMEOUT, EngineSnapshot, EngineStore, RiskLike
from engine.risk import with_point
from engine.safe_call import StrategyCalls
from engine.settlement import Settlement
from engine.startup import RiskFactory, StartupRecovery, default_risk
from engine.state import EngineState
from engine.trading_loop import TradingLoop
from strategies import default_strategies
from strategies.base import Strategy


class TradingEngine:
    def __init__(
        self,
        store: EngineStore,
        broker: BrokerPort,
        params: Params,
        log: LogPort,
        rules: Optional[Sequence[Strategy[Any]]] = None,
        *,
        risk_factory: Optional[RiskFactory] = None,
        unfilled_timeout: timedelta = UNFILLED_ORDER_TIMEOUT,
    ) -> None:
        self._store_port = store
        self._broker = broker
        self._log = log
        chosen = default_strategies(params) if rules is None else rules
        strategies: Dict[str, Strategy[Any]] = {r.strategy_id: r for r in chosen}
        calls = StrategyCalls(log)  # every strategy hook goes through it (engine/safe_call.py)
        # the identity of this rule set, stored with every record a strategy writes
        params_hash = rules_hash([params, *(r.config for _, r in sorted(strategies.items()))])
        self._state = state = EngineState()
        self._points_of: Tuple[Tuple[RiskDaysRecord, ...], Tuple[DrawdownPoint, ...]] = ((), ())
        self._ledger = ledger = Ledger(state, store, broker, log)
        self._limits = LimitEntries(state, broker, log) if params.entry_orders == "limit" else None
        self._desk = desk = OrderDesk(
            state,
            ledger,
            broker=broker,
            log=log,
            unfilled_timeout=unfilled_timeout,
            settle=self._settle,
            limits=self._limits,
        )
        self._settlement = settlement = Settlement(
            state,
            ledger,
            desk=desk,
            log=log,
            rules=strategies,
            params_hash=params_hash,
            unfilled_timeout=unfilled_timeout,
        )
        self._startup = StartupRecovery(
            state,
            ledger,
            desk=desk,
            settlement=settlement,
            store=store,
            broker=broker,
            log=log,
            params=params,
            rules=strategies,
            params_hash=params_hash,
            risk_factory=risk_factory or default_risk,
        )
        self._exercise = exercise = ExerciseBooking(
            state, ledger, desk=desk, broker=broker, log=log, settle=self._settle
        )
        self._loop = TradingLoop(
            state, ledger, desk=desk, exercise=exercise, log=log, params=params, rules=strategies, calls=calls
        )

    # ------------------------------------------------------------------------------------------- LEAN calls

    def start(self, now: datetime) -> None:
        """In initialize. Places no orders: LEAN rejects them during initialize and warm-up."""
        self._startup.restore(now)

    def on_warmup_finished(self, view: MarketView) -> None:
        if not self._state.started:
            self._startup.restore(view.now)
        self._state.now = view.now
        self._state.market_open = view.market_open
        self._state.view = view
        # a marker for research (crash/restart lines on the notebook's plots): every run start, audited first
        self._ledger.audit("run-start", f"run {self._broker.run_id} started at {view.now:%Y-%m-%d %H:%M} (New York)")
        self._startup.rebind_groups()
        self._exercise.settle_missed_exercises()  # assignments and expiries while down, before reconcile
        self._startup.reconcile()
        self._state.trading = True
        self._loop.update_risk(view)
        self._settle()
        self._startup.fold_closed_positions()
        self._ledger.refresh_correlation()  # also when nothing moved: the saved score may predate this code or be lost
        self._ledger.flush()
        snapshot = self.snapshot()
        self._log.info(
            f"engine: ready; strategies {[(s, r.state.value) for s, r in sorted(snapshot.strategies.items())]}, "
            f"open positions {[p.position_id for p in snapshot.open_positions()]}"
        )
        self._say_kill_switch()

    def _say_kill_switch(self) -> None:
        """A tripped kill switch is said at every start: nothing enters until a person resets it."""
        risk = self._state.risk
        try:
            status = risk.kill_switch_status() if risk is not None else ""
        except Exception as error:
            status = f"kill switch state unknown ({error!r})"
        if status:
            self._ledger.alert("kill-switch", status, "risk")

    def on_market(self, view: MarketView) -> None:
        if not self._state.trading:
            return
        self._state.now = view.now
        self._state.market_open = view.market_open
        self._state.view = view
        self._loop.update_risk(view)
        if self._state.reconcile_pending and self._startup.quiet():
            self._startup.reconcile()
        self._desk.cancel_overdue()
        if self._limits is not None:
            self._limits.advance()
        self._settle()
        if view.market_open:
            self._exercise.flatten_settled()
            self._loop.manage_positions(view)
            self._loop.look_for_entries(view)

    def on_order_event(self, event: OrderEventData, now: Optional[datetime] = None) -> None:
        """Never raises (an exception here stops a LEAN algorithm): anything odd is logged and left to
        reconcile. Catches Exception only, so a simulated crash (BaseException) still ends the run.

        `now` is the algorithm's clock when LEAN delivers the event (main.py passes `self.time`). Every record
        this event creates or changes is stamped with it, not with the last bar's time: an event delivered at
        the open, before the day's first bar reached on_market, would otherwise stamp a recovery group with
        yesterday's close, and the unfilled-order timeout would cancel it at once and send it again."""
        if isinstance(now, datetime) and now > self._state.now:
            self._state.now = now
        try:
            self._book_event(event)
        except Exception as error:
            self._log.error(f"engine: order event {event!r} not booked: {error!r}")

    def scheduled_save(self) -> None:
        try:
            self._ledger.save_risk(immediate=False)
            self._store_port.save_dirty()
        except Exception as error:
            self._log.error(f"engine: scheduled save failed: {error!r}")

    def final_save(self) -> None:
        """The 15:45 and end-of-algorithm save: write what changed, retire finished cycles, flush."""
        if self._state.risk is not None and self._state.last_equity is not None and self._state.trading:
            try:
                point = self._state.risk.end_of_day(
                    self._state.now.date(), self._state.last_equity
                )  # one drawdown point per day
                if point is not None:
                    chunk = with_point(self._state.risk_days.get(point.day.isoformat()[:7]), point)
                    self._state.risk_days = {
                        m: c for m, c in self._state.risk_days.items() if c.record_name != chunk.record_name
                    }
                    self._state.risk_days[chunk.month] = chunk
                    self._ledger.save(chunk, immediate=False)  # written by the scheduled save below
            except Exception as error:
                self._log.error(f"engine: end-of-day risk point failed: {error!r}")
        self.scheduled_save()
        self._ledger.retire_finished()
        self._ledger.flush()

    def end_of_run(self, now: datetime) -> None:
        """on_end_of_algorithm: book what expired by now without an event (LEAN settles expiries on the next
        tradable date, after the run), reconcile if something is pending, then the final save."""
        if self._state.trading:
            self._state.now = max(self._state.now, now)
            try:
                self._exercise.expire_at_end_of_run(self._state.now)
                if self._state.reconcile_pending and self._startup.quiet():
                    self._startup.reconcile()
            except Exception as error:
                self._log.error(f"engine: end-of-run expiries not booked: {error!r}")
        self.final_save()

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            strategies=MappingProxyType({sid: m.record for sid, m in self._state.machines.items()}),
            groups=MappingProxyType({**self._state.retired_groups, **self._state.groups}),
            positions=MappingProxyType({**self._state.retired_positions, **self._state.positions}),
            risk=self._state.risk.record if self._state.risk is not None else None,
            drawdown=self._live_drawdown(),
            daily_drawdowns=self._daily_points(),
            started=self._state.started,
            trading=self._state.trading,
        )

    def _daily_points(self) -> Tuple[DrawdownPoint, ...]:
        """The drawdown points of the chunks, oldest first; rebuilt only when a chunk changed (the charts read
        the snapshot on every scheduled save)."""
        chunks = tuple(chunk for _, chunk in sorted(self._state.risk_days.items()))
        if chunks != self._points_of[0]:
            self._points_of = (chunks, tuple(point for chunk in chunks for point in chunk.points))
        return self._points_of[1]

    def _live_drawdown(self) -> float:
        peak = self._state.risk.record.peak_equity if self._state.risk is not None else 0.0
        equity = self._state.last_equity
        if equity is None or peak <= 0:
            return 0.0
        return max(0.0, 1.0 - equity / peak)

    # ------------------------------------------------------------------------------------------- wiring

    def _settle(self) -> None:
        """Settlement.settle, handed to the desk and the exercise booking (built before the Settlement)."""
        self._settlement.settle()

    def _book_event(self, event: OrderEventData) -> None:
        if event.exercise or event.is_assignment:
            self._exercise.book_exercise(event)  # engine/exercise.py: exercise, assignment, expiry
            return
        self._settlement.book_order_event(event)

    # ------------------------------------------------------------------------------------------- for tests

    @property
    def _store(self) -> EngineStore:
        return self._store_port

    @property
    def _risk(self) -> Optional[RiskLike]:
        return self._state.risk

    @property
    def _positions(self) -> Dict[str, PositionRecord]:
        return self._state.positions

    @property
    def _groups(self) -> Dict[str, OrderGroupRecord]:
        return self._state.groups


__all__ = ["TradingEngine"]
