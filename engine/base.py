"""The trading engine's state and its small, safe building blocks (saving, logging, state moves).

The engine is split by job so each file stays well under QC's 32 KB limit:
  engine_base.py     state + persistence/logging helpers (this file)
  engine_orders.py   write-ahead groups, submission, cancels, recovery orders
  engine_recovery.py start-up, re-binding, reconciliation, settling records and strategy states
  engine.py          TradingEngine: the calls main.py makes
Each layer subclasses the previous one; nothing here starts threads (main.py holds an RLock around every call).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Set, Tuple

from core.params import Params, rules_hash
from core.ports import BrokerPort, LogPort, MarketView
from core.records import (
    DrawdownPoint,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Record,
    RiskDaysRecord,
    RiskRecord,
    StrategyState,
    StrategyStateRecord,
)
from core.state_machine import IllegalTransition, StrategyMachine
from engine.protocols import (
    UNFILLED_ORDER_TIMEOUT,
    EngineSnapshot,
    EngineStore,
    RiskLike,
)
from engine.safe_call import StrategyCalls
from strategies import default_strategies
from strategies.base import Strategy, usable

RiskFactory = Callable[[Optional[RiskRecord], Params, datetime], RiskLike]


def default_risk(record: Optional[RiskRecord], params: Params, now: datetime) -> RiskLike:
    from engine.risk import RiskManager  # noqa: PLC0415

    return RiskManager(record, params, now)


class EngineBase:
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
        self._store = store
        self._broker = broker
        self._params = params
        self._log = log
        chosen = default_strategies(params) if rules is None else rules
        self._rules: Dict[str, Strategy[Any]] = {r.strategy_id: r for r in chosen}
        self._calls = StrategyCalls(log)  # every strategy hook goes through it (engine/safe_call.py)
        self._risk_factory: RiskFactory = risk_factory or default_risk
        self._unfilled_timeout = unfilled_timeout
        # the identity of this rule set, stored with every record a strategy writes
        self._params_hash = rules_hash([params, *(r.config for _, r in sorted(self._rules.items()))])
        self._machines: Dict[str, StrategyMachine] = {}
        self._groups: Dict[str, OrderGroupRecord] = {}
        self._positions: Dict[str, PositionRecord] = {}
        # archived by final_save: no longer worked on, still shown by snapshot() (bounded, see engine.py)
        self._retired_groups: Dict[str, OrderGroupRecord] = {}
        self._retired_positions: Dict[str, PositionRecord] = {}
        self._risk: Optional[RiskLike] = None
        self._saved_risk: Optional[RiskRecord] = None
        # the daily drawdown chunks by month ("2024-03"): the ring of 12 the store keeps, so at most 12
        self._risk_days: Dict[str, RiskDaysRecord] = {}
        self._points_of: Tuple[Tuple[RiskDaysRecord, ...], Tuple[DrawdownPoint, ...]] = ((), ())
        self._last_equity: Optional[float] = None  # from the last market view, for the end-of-day risk point
        self._now = datetime.min
        self._started_at: Optional[datetime] = None  # the algorithm's clock when this process started (_run_id)
        self._market_open = False  # as of the last market view
        self._started = False
        self._trading = False  # after on_warmup_finished: orders may be placed
        self._submitting: Set[str] = set()  # groups whose submit call has not returned (events may come first)
        self._cancel_requested: Dict[str, datetime] = {}
        # positions that need attention -> the day of their last exit attempt (at most one a day, see engine.py)
        self._attention_exit_day: Dict[str, date] = {}
        self._skips_logged: Dict[tuple[str, str], date] = {}  # (strategy, skip reason) -> the day it was logged
        self._last_refusal: Dict[str, str] = {}  # group id -> the broker's reason for its latest refused order
        self._reconcile_pending = False  # holdings may have moved without an event we could book
        # the day each strategy's last buying-power refusal was logged: once a day, not on every bar
        self._bp_refusal_logged: Dict[str, date] = {}
        # the open position ids the risk record's correlation score was last computed from (None: not yet)
        self._correlated_ids: Optional[frozenset[str]] = None
        self._view: Optional[MarketView] = None  # the last market view (quotes price fills learned from holdings)
        # positions whose close waits for an exit fill's price -> the first open-market moment it waited
        self._awaiting_price: Dict[str, datetime] = {}
        # orders held back until their contracts have a price (engine_orders._quotes_missing): key -> the first
        # open-market moment it waited (None while the market is closed)
        self._awaiting_quote: Dict[str, Optional[datetime]] = {}

    # ------------------------------------------------------------------------------------------- run identity

    @property
    def _run_id(self) -> str:
        """This process's run: the broker's run id (LEAN's algorithm id) plus the moment this engine started.

        LEAN order ids mean something only inside one process: a live restart reloads the broker's open orders
        with new ids counted from 1 again (Engine/TransactionHandlers/BrokerageTransactionHandler.cs
        `AddOpenOrder` -> Common/Securities/SecurityTransactionManager.cs `GetIncrementOrderId`, a counter of the
        new process), and nothing promises the restart a new algorithm id (the cloud restarting a failed live
        algorithm, a container restarted with the same config may keep it). Keyed on the algorithm id alone, a
        same-id restart would take the saved order ids (and fill keys) of the dead process for its own: skip
        re-binding, cancel its own surviving orders as unknown, drop fills as duplicates. With the start moment
        in it (LEAN sets the clock to the wall clock before Initialize in live, BrokerageSetupHandler.Setup),
        every start is a new run and a same-id restart recovers exactly like a new-id one."""
        started = self._started_at or self._now
        return f"{self._broker.run_id}@{started:%Y%m%dT%H%M%S%f}"

    # ------------------------------------------------------------------------------------------- persistence

    def _save(self, record: Record, immediate: bool = True) -> bool:
        """store.put, guarded: a store bug must not stop trading bookkeeping (the record stays in memory and the
        next scheduled save retries it)."""
        try:
            saved = self._store.put(record, immediate)
        except Exception as error:
            self._log.error(f"engine: saving {record.record_name} failed: {error!r}")
            return False
        if immediate and not saved:
            self._log.error(f"engine: {record.record_name} is not durable yet (store refused the save)")
        return saved

    def _flush(self) -> bool:
        try:
            return self._store.flush()
        except Exception as error:
            self._log.error(f"engine: flush failed: {error!r}")
            return False

    def _flush_write_ahead(self) -> bool:
        """Flush before an order. False only when the flush failed to confirm the write-ahead on disk (then no
        order goes out; the caller retries later); a backend that cannot flush on request (QC Cloud) is not a
        failure: recovery reconciles with the broker there (README, Known limits)."""
        flushed = self._flush()
        return flushed or not self._store.flush_failed

    def _set_group(self, group: OrderGroupRecord, immediate: bool = True) -> bool:
        self._groups[group.group_id] = group
        return self._save(group, immediate)

    def _set_position(self, position: PositionRecord, immediate: bool = True) -> bool:
        self._positions[position.position_id] = position
        saved = self._save(position, immediate)
        self._refresh_correlation()
        return saved

    def _quote_mids(self, symbols: Iterable[str]) -> Dict[str, float]:
        """Current mids of the contracts that have a usable quote in the last market view."""
        mids: Dict[str, float] = {}
        view = self._view
        if view is None:
            return mids
        for symbol in sorted(symbols):
            try:
                quote = view.quote(symbol)
            except Exception as error:
                self._log.error(f"engine: quote of {symbol} failed: {error!r}")
                continue
            if quote is not None and usable(quote):
                mids[symbol] = quote.mid
        return mids

    def _refresh_correlation(self, save: bool = True) -> bool:
        """Keep the risk record's correlation score true to the open positions (OPEN or CLOSING): recomputed
        whenever their set changes (entry or exit filled, adoption, reconcile) and, with `save`, written at once
        when it moved. True when the record changed. A crash that loses the write costs nothing: the first
        call after a restart recomputes it."""
        if self._risk is None:
            return False
        held = [p for _, p in sorted(self._positions.items()) if p.status is not PositionStatus.CLOSED]
        ids = frozenset(p.position_id for p in held)
        if ids == self._correlated_ids:
            return False
        try:
            changed = self._risk.update_correlation(held, self._now)
        except Exception as error:
            self._log.error(f"engine: correlation update failed: {error!r}")
            return False
        self._correlated_ids = ids
        if changed and save:
            self._save_risk(immediate=True)
        return changed

    def _save_risk(self, immediate: bool) -> bool:
        """Write the risk record when it is not the one last handed to the store. The risk manager replaces
        its record object only on a change, so the identity test makes a bar that changed nothing free."""
        if self._risk is None:
            return True
        record = self._risk.record
        if record is self._saved_risk or (record == self._saved_risk and not immediate):
            return True
        saved = self._save(record, immediate)
        self._saved_risk = record
        return saved

    def _persist_strategy(self, record: StrategyStateRecord) -> bool:
        return self._save(record, immediate=True)

    def _audit(self, kind: str, message: str, ref: str = "") -> None:
        try:
            self._store.audit(kind, message, ref)
        except Exception as error:
            self._log.error(f"engine: audit note failed: {error!r}")

    def _alert(self, kind: str, message: str, ref: str = "") -> None:
        """Something a human should read: error log + audit record."""
        self._log.error(f"engine: {message}")
        self._audit(kind, message, ref)

    # ------------------------------------------------------------------------------------------- state moves

    def _move(self, machine: StrategyMachine, to: StrategyState, reason: str, **changes: Any) -> bool:
        """A guarded transition: True when the machine is in `to` and that is durable. `changes` are the
        record fields to set (position_id, group_id, last_entry_day; omitted = kept). An illegal move is logged
        (a bug, not a reason to stop the bookkeeping) and leaves the state as it was."""
        if machine.state is to:
            return True
        try:
            return machine.transition(to, self._now, reason, **changes)
        except IllegalTransition as error:
            self._log.error(f"engine: {error}")
            return False
        except Exception as error:
            self._log.error(f"engine: moving {machine.strategy_id} to {to.value} failed: {error!r}")
            return False

    # ------------------------------------------------------------------------------------------- read-only view

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            strategies=MappingProxyType({sid: m.record for sid, m in self._machines.items()}),
            groups=MappingProxyType({**self._retired_groups, **self._groups}),
            positions=MappingProxyType({**self._retired_positions, **self._positions}),
            risk=self._risk.record if self._risk is not None else None,
            drawdown=self._live_drawdown(),
            daily_drawdowns=self._daily_points(),
            started=self._started,
            trading=self._trading,
        )

    def _daily_points(self) -> Tuple[DrawdownPoint, ...]:
        """The drawdown points of the chunks, oldest first; rebuilt only when a chunk changed (the charts read
        the snapshot on every scheduled save)."""
        chunks = tuple(chunk for _, chunk in sorted(self._risk_days.items()))
        if chunks != self._points_of[0]:
            self._points_of = (chunks, tuple(point for chunk in chunks for point in chunk.points))
        return self._points_of[1]

    def _live_drawdown(self) -> float:
        peak = self._risk.record.peak_equity if self._risk is not None else 0.0
        equity = self._last_equity
        if equity is None or peak <= 0:
            return 0.0
        return max(0.0, 1.0 - equity / peak)

    # ------------------------------------------------------------------------------------------- hooks

    def _settle(self) -> None:
        """Bring records and strategy states in line with each other and act on decisions (engine_recovery)."""
        raise NotImplementedError


__all__ = ["EngineBase", "RiskFactory", "default_risk"]
