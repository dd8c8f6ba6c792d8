"""A live deployment of main.py over the synthetic market, with crashes and restarts (BrokerageSetupHandler).

What survives a restart lives in the `Deployment`: the brokerage account (holdings, cash, open orders with
their broker ids), the ObjectStore's disk, the market path and the crash/fault plans. Each (re)start builds a
new algorithm instance the way LEAN's live set-up does (BrokerageSetupHandler.Setup):
  construct (is_warming_up True) -> time = restart moment -> initialize() with EMPTY holdings -> cash set from
  the broker -> open orders loaded with NEW LEAN ids (status SUBMITTED, no events) -> holdings loaded
  (securities auto-added) -> warm-up ends -> events before the start are skipped -> on_warmup_finished().
Then it streams the market steps in LEAN's backtest order (scheduler.py, transactions.py).
`live_mode` is True, `algorithm_id` is "L-<n>" (new every start, "" during initialize: Engine/Engine.cs sets it
after set-up), `project_id` fixed.

Crash: a `SimulatedCrash` from any crash point (store save/flush hooks, order submission) ends the instance;
pending ObjectStore saves are lost (`store.crash()`, optionally after flushing the keys `flush_on_crash`
picks), async events not yet delivered are lost, and the broker keeps working while the algorithm is down
(`downtime`): due orders fill, shorts are assigned and expiries settle with no order events (only
LoadExistingHoldingsAndOrders sees them). Then a new
instance starts.
An `AlgorithmRuntimeError` (exception in a handler or scheduled event) stops the deployment for good, as a
live runtime error would.

Flush cadence: LEAN flushes ~5 s of WALL time after the first pending save (LocalObjectStore's persist timer), which
has no meaning in
simulated time. The deployment flushes after every step (`flush_store`); which saves are pending at a crash is
decided by the crash plan (a crash between a save and the end of its step loses it; a crash inside the flush
loses the keys after it). Differs from LEAN: live scheduled events run on a real-time thread
(LiveTradingRealTimeHandler); here they
run in backtest order, deterministically.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from core.contracts import contract_key
from core.records import Right
from tests.harness.brokerage import BrokerOrder, SimulatedBrokerage
from tests.harness.faults import CrashPlan, CrashPoint, FaultPlan, SimulatedCrash
from tests.harness.lean_stub.algorithm import QCAlgorithm, pending_environment
from tests.harness.lean_stub.enums import OptionRight, SecurityType
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.loader import load_main
from tests.harness.market import SyntheticMarket, level_scale
from tests.harness.market_calendar import is_market_open
from tests.harness.object_store import SimulatedObjectStore
from tests.harness.scheduler import AlgorithmRuntimeError


@dataclass
class AlgorithmEnvironment:
    now: datetime
    market: SyntheticMarket
    brokerage: SimulatedBrokerage
    store: SimulatedObjectStore
    crash_plan: CrashPlan
    live_mode: bool
    project_id: int
    algorithm_id: str
    parameters: Mapping[str, str]

    def prices_for(self, algorithm: QCAlgorithm) -> _Prices:
        return _Prices(algorithm, self.brokerage)


class _Prices:
    """PriceSource of one algorithm: the latest step at or before its time."""

    def __init__(self, algorithm: QCAlgorithm, brokerage: SimulatedBrokerage) -> None:
        self._algorithm = algorithm
        self._brokerage = brokerage

    def prices(self, symbol: Symbol) -> Tuple[float, float, float, float]:
        index = self._algorithm._step_index
        if index is None or (
            symbol.id.date.year < 2000
            and symbol.security_type
            in (
                SecurityType.OPTION,
                SecurityType.INDEX_OPTION,
            )
        ):
            return 0.0, 0.0, 0.0, 0.0  # before any data, or a canonical option symbol
        mark, bid, ask = self._brokerage.quote(symbol, index)
        market = self._brokerage.market
        step = market.steps[index]
        if symbol.security_type == SecurityType.EQUITY or (
            symbol.security_type == SecurityType.INDEX and symbol.value != "VIX"
        ):
            opened = round(step.open * level_scale(symbol.value), 2)
        else:
            opened = mark
        return mark, opened, bid, ask

    def has_data(self, security: Any) -> bool:
        index = self._algorithm._step_index
        if index is None:
            return False
        if security.seeded or (security.data_from is not None and index >= security.data_from):
            return True
        return bool(self._algorithm.in_option_universe(security.symbol, index))

    def exchange_open(self) -> bool:
        return is_market_open(self._algorithm.time)


@dataclass
class RunRecord:
    algorithm_id: str
    started_at: datetime
    loaded_open_orders: List[Tuple[int, str]] = field(default_factory=list)  # (new LEAN id, broker id)
    holdings_during_initialize: Dict[str, float] = field(default_factory=dict)
    ended_at: Optional[datetime] = None
    crash: Optional[CrashPoint] = None
    runtime_error: Optional[str] = None


def symbol_key(symbol: Symbol) -> str:
    """The contract key main.py uses (core.contracts.contract_key); the ticker for non-options."""
    if symbol.security_type not in (SecurityType.OPTION, SecurityType.INDEX_OPTION) or symbol.underlying is None:
        return symbol.value
    right = Right.PUT if symbol.id.option_right == OptionRight.PUT else Right.CALL
    return contract_key(symbol.underlying.value, symbol.id.date.date(), right, symbol.id.strike_price)


# Entries as one combo MARKET order (parameter entry-orders; the template's default is a walked combo limit).
# LEAN fills a combo limit's legs all at once (FillModel.ComboLimitFill) and the harness applies no leg faults
# but `reject` to it, so the scenarios about half-filled entries (completion, rollback, re-binding working legs)
# run with market entries, whose legs LEAN fills one by one.
MARKET_ENTRIES = {"entry-orders": "market"}


class Deployment:
    def __init__(  # noqa: PLR0917 (the agreed Deployment signature)
        self,
        seed: int = 1,
        start: date = date(2024, 1, 2),
        end: date = date(2024, 1, 31),
        parameters: Optional[Mapping[str, str]] = None,
        storage_root: Optional[str | Path] = None,
        faults: Optional[FaultPlan] = None,
        crash_plan: Optional[CrashPlan] = None,
        *,
        cash: float = 250_000.0,
        step_minutes: int = 5,
        project_id: int = 424242,
        live_mode: bool = True,
        algorithm_class: Optional[type] = None,
        downtime: timedelta = timedelta(minutes=10),
        flush_on_crash: Optional[Callable[[List[str]], Sequence[str]]] = None,
        market: Optional[SyntheticMarket] = None,
        first_start: Optional[datetime] = None,
    ) -> None:
        self.start, self.end = start, end
        self.parameters: Dict[str, str] = {"start-date": start.isoformat(), "end-date": end.isoformat()}
        self.parameters.update(parameters or {})
        self.market = market or SyntheticMarket(seed, start, end, step_minutes=step_minutes)
        self.brokerage = SimulatedBrokerage(self.market, cash, faults)
        self.crash_plan = crash_plan or CrashPlan()
        # a real folder, always: the algorithm confirms a flush by reading back the file at get_file_path's path
        self._scratch: Optional[tempfile.TemporaryDirectory[str]] = None
        if storage_root is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="crashsafe-store-")
            storage_root = self._scratch.name
        self.store = SimulatedObjectStore(storage_root)
        self._hook_store()
        self.project_id = project_id
        self.live_mode = live_mode
        self.algorithm_class = algorithm_class
        self.downtime = downtime
        self.flush_on_crash = flush_on_crash
        self.first_start = first_start or datetime.combine(start, time(9, 0))
        self.algorithm: Optional[Any] = None
        self.runs: List[RunRecord] = []
        self.runtime_error: Optional[AlgorithmRuntimeError] = None
        self._matched = -1  # last step the broker matched
        self._settled = -1  # last step whose expiries were settled

    # -- what the invariant checker and the demo read --

    def broker_holdings(self) -> Dict[str, int]:
        return {symbol_key(symbol): quantity for symbol, quantity in self.brokerage.holding_quantities().items()}

    def open_orders(self) -> List[BrokerOrder]:
        return self.brokerage.open_orders()

    @property
    def engine(self) -> Any:
        return getattr(self.algorithm, "_engine", None)

    @property
    def crashes(self) -> List[CrashPoint]:
        return self.crash_plan.crashes

    def flush_store(self) -> int:
        """Push every pending save to disk (the stand-in for LEAN's 5-second flush timer)."""
        return self.store.flush()

    # -- running --

    def _hook_store(self) -> None:
        plan = self.crash_plan
        self.store.hooks.append(lambda operation, key: plan.point(f"store-{operation}", key))

    def _new_instance(self, moment: datetime) -> Any:
        cls = self.algorithm_class or load_main()
        record = RunRecord(self._algorithm_id(), moment)
        self.runs.append(record)
        env = AlgorithmEnvironment(
            moment,
            self.market,
            self.brokerage,
            self.store,
            self.crash_plan,
            self.live_mode,
            self.project_id,
            record.algorithm_id,
            self.parameters,
        )
        with pending_environment(env):
            algorithm = cls()
        self.algorithm = algorithm
        algorithm._set_time(moment)
        _guard("initialize", algorithm.initialize)
        algorithm.set_algorithm_id(record.algorithm_id)  # Engine.cs: after Setup (initialize), before SetLocked
        record.holdings_during_initialize = {
            symbol_key(h.symbol): h.quantity for h in algorithm.portfolio.values() if h.invested
        }
        if self.live_mode or len(self.runs) > 1:
            algorithm.portfolio.set_cash(self.brokerage.cash)  # CashBook zeroed, then the broker's balance
            record.loaded_open_orders = algorithm.transactions.load_open_orders(self.brokerage.open_orders(), moment)
            for symbol, holding in self.brokerage.holdings.items():
                if not algorithm.securities.contains_key(symbol):
                    algorithm.add_security(symbol)
                security = algorithm.securities[symbol]
                security.holdings.set_holdings(holding.average_price, holding.quantity)
                # BrokerageSetupHandler seeds a held security with a TradeBar at its market price
                security.seeded_price_only = algorithm._step_index is not None
        else:
            self.brokerage.cash = algorithm.portfolio.cash
        algorithm.is_warming_up = False
        algorithm.schedule.skip_until(moment)
        _guard("on_warmup_finished", algorithm.on_warmup_finished)
        return algorithm

    def _algorithm_id(self) -> str:
        """Live: "L-<n>", new on every (re)start. Backtest: a random 10-digit id like the lean CLI gives every
        backtest (lean CLI commands/backtest.py), so two backtests over the same storage never share a namespace."""
        if self.live_mode:
            return f"L-{len(self.runs) + 1}"
        return str(random.SystemRandom().randrange(10**9, 10**10))

    def _broker_alone_until(self, moment: datetime) -> None:
        """The algorithm is down: the broker fills and settles on its own, no events reach anyone."""
        steps = self.market.steps
        index = max(self._matched, self._settled) + 1
        while index < len(steps) and steps[index].time <= moment:
            if self._matched < index:
                self.brokerage.simulate_assignments(index)
                self.brokerage.match(index)
                self._matched = index
            if self._settled < index:
                self.brokerage.settle_expiries(index)
                self._settled = index
            index += 1

    def _stream(self, algorithm: Any, first: int) -> None:
        steps = self.market.steps
        transactions = algorithm.transactions
        for index in range(first, len(steps)):
            moment = steps[index].time
            if moment.date() > self.end:
                break
            algorithm.schedule.fire_due(moment, False, algorithm._set_time)
            algorithm._set_time(moment, index)
            transactions.deliver_pending()
            if self._matched < index:
                # BacktestingBrokerage.Scan: ProcessAssignmentOrders first, then the fills
                updates = self.brokerage.simulate_assignments(index) + self.brokerage.match(index)
                self._matched = index
                transactions.apply_updates(updates)
            algorithm.schedule.fire_due(moment, True, algorithm._set_time)
            transactions.process_synchronous_events(index)
            _guard("on_data", lambda index=index: algorithm.on_data(algorithm.make_slice(index)))
            transactions.process_synchronous_events(index)
            if self._settled < index:
                updates = self.brokerage.settle_expiries(index)
                self._settled = index
                transactions.apply_updates(updates)
            self.market.forget_before(index)
            self.flush_store()
            if algorithm._quit:
                return
        end_of_run = datetime.combine(self.end, time(23, 59, 59))
        algorithm.schedule.fire_due(end_of_run, True, algorithm._set_time)
        _guard("on_end_of_algorithm", algorithm.on_end_of_algorithm)
        self.flush_store()

    def run(self) -> Deployment:
        moment = self.first_start
        while True:
            self._broker_alone_until(moment)
            algorithm: Any = None
            try:
                algorithm = self._new_instance(moment)
                self._stream(algorithm, self.market.first_index_after(moment))
                self.runs[-1].ended_at = algorithm.time
                return self
            except SimulatedCrash as crash:
                crashed_at = algorithm.time if algorithm is not None else moment
                self.runs[-1].crash = crash.point
                self.runs[-1].ended_at = crashed_at
                self._lose_process()
                moment = crashed_at + self.downtime
                if self.market.first_index_after(moment) >= len(self.market.steps):
                    self._broker_alone_until(moment)
                    return self
            except AlgorithmRuntimeError as error:
                self.runtime_error = error
                self.runs[-1].runtime_error = str(error)
                self.runs[-1].ended_at = algorithm.time if algorithm is not None else moment
                return self

    def _lose_process(self) -> None:
        self.algorithm = None
        if self.flush_on_crash is not None:
            chosen = list(self.flush_on_crash(self.store.pending_keys()))
            enabled, self.crash_plan.enabled = self.crash_plan.enabled, False
            try:
                self.store.flush(chosen)
            finally:
                self.crash_plan.enabled = enabled
        self.store = self.store.crash()
        self._hook_store()


def _guard(where: str, call: Callable[[], None]) -> None:
    """LEAN's SetRuntimeError: an exception escaping a handler stops the algorithm (crashes pass through)."""
    try:
        call()
    except AlgorithmRuntimeError:
        raise
    except Exception as error:
        raise AlgorithmRuntimeError(where, error) from error
