"""The ledger: the durable bookkeeping every part of the engine writes through.

One job: turn a change of the shared state (engine/state.py) into a record the store holds, and say what
happened (log, audit, alert). Saving is guarded: a store bug must never stop the trading bookkeeping (the record
stays in memory and the next scheduled save retries it). Strategy state moves (`move`) are guarded the same way:
an illegal move is logged and leaves the state as it was. Nothing here places an order or asks a strategy.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from core.order_groups import is_done
from core.ports import BrokerPort, LogPort
from core.records import OrderGroupRecord, PositionRecord, PositionStatus, Record, StrategyState, StrategyStateRecord
from core.state_machine import IllegalTransition, StrategyMachine
from engine.facts import net_fills
from engine.protocols import EngineStore
from engine.state import EngineState
from strategies.base import usable

RETIRED_SHOWN = 200  # retired groups (and positions) the snapshot still shows, newest kept


class Ledger:
    def __init__(self, state: EngineState, store: EngineStore, broker: BrokerPort, log: LogPort) -> None:
        self._state = state
        self._store = store
        self._broker = broker  # for the run identity only (run_id)
        self._log = log
        # the open position ids the risk record's correlation score was last computed from (None: not yet)
        self._correlated_ids: Optional[frozenset[str]] = None

    @property
    def run_id(self) -> str:
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
        started = self._state.started_at or self._state.now
        return f"{self._broker.run_id}@{started:%Y%m%dT%H%M%S%f}"

    def save(self, record: Record, immediate: bool = True) -> bool:
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

    def flush(self) -> bool:
        try:
            return self._store.flush()
        except Exception as error:
            self._log.error(f"engine: flush failed: {error!r}")
            return False

    def flush_write_ahead(self) -> bool:
        """Flush before an order. False only when the flush failed to confirm the write-ahead on disk (then no
        order goes out; the caller retries later); a backend that cannot flush on request (QC Cloud) is not a
        failure: recovery reconciles with the broker there (README, Known limits)."""
        flushed = self.flush()
        return flushed or not self._store.flush_failed

    def set_group(self, group: OrderGroupRecord, immediate: bool = True) -> bool:
        self._state.groups[group.group_id] = group
        return self.save(group, immediate)

    def set_position(self, position: PositionRecord, immediate: bool = True) -> bool:
        self._state.positions[position.position_id] = position
        saved = self.save(position, immediate)
        self.refresh_correlation()
        return saved

    def quote_mids(self, symbols: Iterable[str]) -> Dict[str, float]:
        """Current mids of the contracts that have a usable quote in the last market view."""
        mids: Dict[str, float] = {}
        view = self._state.view
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

    def refresh_correlation(self, save: bool = True) -> bool:
        """Keep the risk record's correlation score true to the open positions (OPEN or CLOSING): recomputed
        whenever their set changes (entry or exit filled, adoption, reconcile) and, with `save`, written at once
        when it moved. True when the record changed. A crash that loses the write costs nothing: the first
        call after a restart recomputes it."""
        if self._state.risk is None:
            return False
        held = [p for _, p in sorted(self._state.positions.items()) if p.status is not PositionStatus.CLOSED]
        ids = frozenset(p.position_id for p in held)
        if ids == self._correlated_ids:
            return False
        try:
            changed = self._state.risk.update_correlation(held, self._state.now)
        except Exception as error:
            self._log.error(f"engine: correlation update failed: {error!r}")
            return False
        self._correlated_ids = ids
        if changed and save:
            self.save_risk(immediate=True)
        return changed

    def save_risk(self, immediate: bool) -> bool:
        """Write the risk record when it is not the one last handed to the store. The risk manager replaces
        its record object only on a change, so the identity test makes a bar that changed nothing free."""
        if self._state.risk is None:
            return True
        record = self._state.risk.record
        if record is self._state.saved_risk or (record == self._state.saved_risk and not immediate):
            return True
        saved = self.save(record, immediate)
        self._state.saved_risk = record
        return saved

    def persist_strategy(self, record: StrategyStateRecord) -> bool:
        return self.save(record, immediate=True)

    def audit(self, kind: str, message: str, ref: str = "") -> None:
        try:
            self._store.audit(kind, message, ref)
        except Exception as error:
            self._log.error(f"engine: audit note failed: {error!r}")

    def alert(self, kind: str, message: str, ref: str = "") -> None:
        """Something a human should read: error log + audit record."""
        self._log.error(f"engine: {message}")
        self.audit(kind, message, ref)

    def move(self, machine: StrategyMachine, to: StrategyState, reason: str, **changes: Any) -> bool:
        """A guarded transition: True when the machine is in `to` and that is durable. `changes` are the
        record fields to set (position_id, group_id, last_entry_day; omitted = kept). An illegal move is logged
        (a bug, not a reason to stop the bookkeeping) and leaves the state as it was."""
        if machine.state is to:
            return True
        try:
            return machine.transition(to, self._state.now, reason, **changes)
        except IllegalTransition as error:
            self._log.error(f"engine: {error}")
            return False
        except Exception as error:
            self._log.error(f"engine: moving {machine.strategy_id} to {to.value} failed: {error!r}")
            return False

    def retire_finished(self) -> None:
        """Archive every finished cycle: a CLOSED position with all its groups done, or an entry attempt that
        ended flat (cancelled, refused or rolled back) and never had a position. Retired together, in one call,
        so no group is ever left without its position (startup would rebuild the position from it)."""
        if self._state.submitting or not self._state.trading:
            return
        families: Dict[str, List[OrderGroupRecord]] = {}
        for group in self._state.groups.values():
            families.setdefault(group.position_id, []).append(group)
        for position_id in sorted(set(families) | set(self._state.positions)):
            members = families.get(position_id, [])
            if any(not is_done(g) for g in members):
                continue
            position = self._state.positions.get(position_id)
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
                self._state.groups.pop(group.group_id, None)
                self._state.cancel_requested.pop(group.group_id, None)
                self._state.retired_groups[group.group_id] = group
            if position is not None:
                self._state.positions.pop(position_id, None)
                self._state.retired_positions[position_id] = position
        # the snapshot keeps showing what this run retired (the demo and the drill read it), within bounds
        for group_id in list(self._state.retired_groups)[:-RETIRED_SHOWN]:
            del self._state.retired_groups[group_id]
        for position_id in list(self._state.retired_positions)[:-RETIRED_SHOWN]:
            del self._state.retired_positions[position_id]


__all__ = ["RETIRED_SHOWN", "Ledger"]
