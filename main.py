# region imports
from AlgorithmImports import *

# endregion
"""Crash-safe LEAN template: the one QCAlgorithm subclass, and the only module that imports LEAN.

It is a thin adapter. LEAN objects are turned into the plain data of `core.ports` and
`persistence.ports`; every decision is made by LEAN-free code (`strategies/`, `persistence/`, `recovery/`)
that the offline tests drive through the same file.

Start sequence (see README "What happens on a restart"):
1. `initialize`: load all saved state from the ObjectStore, restore the state machines and risk limits,
   decide what to do with incomplete order groups and persist those decisions. No orders: LEAN rejects
   orders while `is_warming_up`, which is True during `initialize`.
2. `on_warmup_finished`: holdings are real now (live holdings arrive after `initialize`): reconcile saved
   positions with them, then act on the persisted decisions.
3. Every 5 minutes (around the clock) write what changed; at 15:45 a final save of the day.
"""

import builtins
import threading
import uuid
from datetime import date, datetime, timedelta

from persistence.keys import Namespace
from persistence.ports import ObjectStorePort
from core.records import AuditRecord, Right
from persistence.store import StateStore
from core.contracts import combo_ratio, contract_key
from engine.dashboard import ChartPort, Dashboard, SeriesSpec, Thresholds, facts_of
from engine.engine import TradingEngine
from engine.limits import record_limits
from engine.safe_call import StrategyCalls
from core.params import Params
from core.selection import REFERENCE_PRICE
from strategies import build_strategies
from strategies.base import universe_price, universe_reach
from core.ports import EventStatus, LegSpec, OptionQuote, OrderEventData, SubmittedOrder

# LEAN order status -> the engine's event status (LEAN's None status never reaches the algorithm)
_EVENT_STATUS = {
    OrderStatus.NEW: EventStatus.NEW,
    OrderStatus.SUBMITTED: EventStatus.SUBMITTED,
    OrderStatus.PARTIALLY_FILLED: EventStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED: EventStatus.FILLED,
    OrderStatus.CANCELED: EventStatus.CANCELED,
    OrderStatus.INVALID: EventStatus.INVALID,
    OrderStatus.CANCEL_PENDING: EventStatus.CANCEL_PENDING,
    OrderStatus.UPDATE_SUBMITTED: EventStatus.UPDATE_SUBMITTED,
}

# Index options trade on the index's own chain (SPX -> SPXW weeklies/dailies); everything else is an equity option.
_INDEX_OPTION_TARGETS = {"SPX": "SPXW", "NDX": "NDXP", "RUT": "RUTW"}


class LeanObjectStore(ObjectStorePort):
    """ObjectStorePort over QCAlgorithm.object_store (text only; save's bool is passed through).

    `flush` claims durability only for what it confirmed (Engine/Storage/LocalObjectStore.cs): GetFilePath of a
    saved key runs Persist, PersistData writes every dirty entry but catches each error (ErrorRaised only), so
    each key saved since the last confirmed flush is read back from its file (PathForKey: fixed per key, asked
    once) and compared; a mismatch is logged and the flush retried once; still unconfirmed -> OSError."""

    def __init__(self, algorithm: QCAlgorithm) -> None:
        self._algorithm = algorithm
        self._unconfirmed: Dict[str, str] = {}  # key -> text saved since the last confirmed flush
        self._paths: Dict[str, str] = {}  # key -> its file (live keys only: dropped on delete)
        self.sizes: Dict[str, int] = {}  # bytes of every key this run read or saved (the charts' store size)

    def save(self, key: str, text: str) -> bool:
        saved = bool(self._algorithm.object_store.save(key, text))
        if saved:
            self._unconfirmed[key] = text
            self.sizes[key] = len(text.encode("utf-8"))
        return saved

    def read(self, key: str) -> str:
        text = self._algorithm.object_store.read(key)
        if text is None:  # a key registered by get_file_path with no file reads as null
            raise KeyError(key)
        self.sizes[key] = len(str(text).encode("utf-8"))
        return str(text)

    def read_bytes(self, key: str) -> bytes:
        # ObjectStore.ReadBytes: the stored bytes as they are (Read would turn bytes that are not UTF-8 into
        # U+FFFD, so a quarantine copy could not keep them); pythonnet hands back a System.Byte[]
        data = self._algorithm.object_store.read_bytes(key)
        if data is None:  # a key registered by get_file_path with no file reads as null
            raise KeyError(key)
        stored = bytes(bytearray(data))
        self.sizes[key] = len(stored)
        return stored

    def quota(self) -> tuple[int, int]:
        # ObjectStore.MaxFiles / MaxSize (LocalObjectStore: Controls.StorageFileCount / StorageLimit)
        store = self._algorithm.object_store
        return int(store.max_files), int(store.max_size)

    def contains_key(self, key: str) -> bool:
        return bool(self._algorithm.object_store.contains_key(key))

    def delete(self, key: str) -> bool:
        self._unconfirmed.pop(key, None)
        self._paths.pop(key, None)
        self.sizes.pop(key, None)
        return bool(self._algorithm.object_store.delete(key))

    def keys(self) -> List[str]:
        return [str(key) for key in self._algorithm.object_store.keys]

    def flush(self) -> bool:
        # the only flush Python can reach; QC Cloud's store is not public: there we cannot promise anything
        if self._algorithm.deployment_target != DeploymentTarget.LOCAL_PLATFORM:
            return False
        for attempt in (1, 2):
            try:
                if self._unconfirmed:
                    self._path(min(self._unconfirmed), persist=True)
            except OSError:
                pass  # the read-back below finds what is missing
            missing = [key for key in sorted(self._unconfirmed) if not self._on_disk(key)]
            for key in set(self._unconfirmed) - set(missing):
                del self._unconfirmed[key]
            if not missing:
                return True
            self._algorithm.error(
                f"STATE FLUSH NOT CONFIRMED (attempt {attempt}): {len(missing)} key(s), e.g. {missing[0]}"
            )
        raise OSError(f"flush not confirmed on disk for {len(self._unconfirmed)} key(s)")

    def _path(self, key: str, persist: bool = False) -> str:
        if persist or key not in self._paths:
            self._paths[key] = str(self._algorithm.object_store.get_file_path(key))
        return self._paths[key]

    def _on_disk(self, key: str) -> bool:
        try:
            with open(self._path(key), "rb") as stored:
                return stored.read() == self._unconfirmed[key].encode("utf-8")
        except OSError:
            return False


class LeanLog:
    def __init__(self, algorithm: QCAlgorithm) -> None:
        self._algorithm = algorithm

    def info(self, message: str) -> None:
        self._algorithm.log(message)

    def error(self, message: str) -> None:
        self._algorithm.error(message)


# -- LEAN charts and runtime statistics (what to show: engine/dashboard.py) -------------------------------------


class LeanCharts(ChartPort):
    """ChartPort over QCAlgorithm's charting (Algorithm/QCAlgorithm.Plotting.cs: AddChart, Plot(chart, series,
    value), SetRuntimeStatistic; Common/Chart.cs AddSeries, Common/Series.cs Series(name, type, index, unit))."""

    def __init__(self, algorithm: QCAlgorithm) -> None:
        self._algorithm = algorithm
        self._charts: Dict[str, Chart] = {}

    def declare(self, spec: SeriesSpec) -> None:
        chart = self._charts.get(spec.chart)
        if chart is None:
            chart = self._charts[spec.chart] = Chart(spec.chart)
            self._algorithm.add_chart(chart)
        kind = SeriesType.SCATTER if spec.scatter else SeriesType.LINE
        chart.add_series(Series(spec.name, kind, 0, spec.unit))

    def plot(self, chart: str, series: str, value: float) -> None:
        self._algorithm.plot(chart, series, value)

    def statistic(self, name: str, value: str) -> None:
        self._algorithm.set_runtime_statistic(name, value)


class LeanDashboard:
    """Samples the engine and the store for the charts: every scheduled save, daily at the final save, and at
    the end of start-up (a restart's recovery steps). Never raises into LEAN: a chart is not worth a stop."""

    def __init__(
        self, algorithm: QCAlgorithm, engine: TradingEngine, store: StateStore, port: LeanObjectStore, params: Params
    ) -> None:
        self._algorithm, self._engine, self._store, self._port = algorithm, engine, store, port
        self._since = algorithm.utc_time
        thresholds = Thresholds(params.risk_halve_drawdown, params.risk_no_new_drawdown, params.risk_close_all_drawdown)
        strategy_ids = tuple(sorted(engine.snapshot().strategies))
        self._dashboard = Dashboard(LeanCharts(algorithm), strategy_ids, thresholds, LeanLog(algorithm))

    def sample(self, daily: bool, force: bool = False) -> None:
        try:
            audit = self._store.get("audit")
            audit = audit if isinstance(audit, AuditRecord) else None
            facts = facts_of(self._engine.snapshot(), audit, self._since, self._algorithm.time, self._port.sizes)
            self._dashboard.sample(facts, daily, force)
        except builtins.Exception as error:  # `from System import *` shadows Exception in the stubs' view
            self._algorithm.error(f"charts: sample failed: {error!r}")


def _right(option_right: OptionRight) -> Right:
    return Right.PUT if option_right == OptionRight.PUT else Right.CALL


def _key_of(symbol: Symbol) -> str:
    """contract_key of an option Symbol; the plain ticker for anything else."""
    if symbol.security_type not in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
        return str(symbol.value)
    sid = symbol.id
    underlying = str(symbol.underlying.value)
    return contract_key(underlying, sid.date.date(), _right(sid.option_right), float(sid.strike_price))


class LeanMarketView:
    """MarketView of the current slice. The chain is converted only when a strategy asks for it."""

    def __init__(self, algorithm: "CrashSafeTemplate", data: Optional[Slice]) -> None:
        self._algorithm = algorithm
        self._data = data
        self._chain: Optional[List[OptionQuote]] = None

    @property
    def now(self) -> datetime:
        return self._algorithm.time

    @property
    def underlying(self) -> str:
        return self._algorithm.underlying_ticker

    @property
    def price(self) -> Optional[float]:
        price = float(self._algorithm.securities[self._algorithm.underlying_symbol].price)
        return price if price > 0 else None

    @property
    def open_price(self) -> Optional[float]:
        return self._algorithm.session_open

    @property
    def vix(self) -> Optional[float]:
        symbol = self._algorithm.vix_symbol
        if symbol is None:
            return None
        value = float(self._algorithm.securities[symbol].price)
        return value if value > 0 else None

    @property
    def equity(self) -> float:
        return float(self._algorithm.portfolio.total_portfolio_value)

    @property
    def market_open(self) -> bool:
        return bool(self._algorithm.securities[self._algorithm.underlying_symbol].exchange.exchange_open)

    @property
    def session_close(self) -> Optional[datetime]:
        return self._algorithm.todays_close()

    @property
    def margin_used(self) -> Optional[float]:
        # LEAN's own margin model (option strategies credit covered shorts); the engine compares it with the
        # BP-by-VIX limit before every entry
        return float(self._algorithm.portfolio.total_margin_used)

    def chain(self) -> Sequence[OptionQuote]:
        if self._chain is None:
            self._chain = []
            chain = self._data.option_chains.get(self._algorithm.option_symbol) if self._data is not None else None
            if chain is not None:
                for contract in chain:
                    quote = self._algorithm.remember_contract(contract)
                    if quote is not None:
                        self._chain.append(quote)
        return self._chain

    def quote(self, symbol: str) -> Optional[OptionQuote]:
        # A contract we hold or ordered is subscribed (symbol_for, holdings): its own security has the current
        # bid/ask, so marking positions every minute never converts the whole chain (thousands of contracts).
        subscribed = self._subscribed_quote(symbol)
        if subscribed is not None:
            return subscribed
        for quote in self.chain():
            if quote.symbol == symbol:
                return quote
        return None

    def _subscribed_quote(self, symbol: str) -> Optional[OptionQuote]:
        lean_symbol = self._algorithm.known_symbols.get(symbol)
        if lean_symbol is None or not self._algorithm.securities.contains_key(lean_symbol):
            return None
        security = self._algorithm.securities[lean_symbol]
        bid, ask = float(security.bid_price), float(security.ask_price)
        if bid <= 0 and ask <= 0:
            return None
        sid = lean_symbol.id
        return OptionQuote(
            symbol, self.underlying, _right(sid.option_right), float(sid.strike_price), sid.date.date(), bid, ask, None
        )


class LeanBroker:
    """BrokerPort over QCAlgorithm orders and holdings."""

    def __init__(self, algorithm: "CrashSafeTemplate") -> None:
        self._algorithm = algorithm
        self._refusals: Dict[str, str] = {}  # tag -> reason of the latest refused ticket (the last 100 tags)

    @property
    def run_id(self) -> str:
        return str(self._algorithm.algorithm_id)

    def submit_combo(self, legs: Sequence[LegSpec], tag: str, limit_price: float = 0.0) -> List[SubmittedOrder]:
        # QCAlgorithm.CheckComboOrderSizing refuses legs sharing a divisor: legs carry the ratio, quantity the units
        ratios, units = combo_ratio(leg.quantity for leg in legs)
        lean = [Leg.create(self._algorithm.symbol_for(leg), ratio) for leg, ratio in zip(legs, ratios, strict=True)]
        if limit_price:
            tickets = self._algorithm.combo_limit_order(lean, units, limit_price, asynchronous=True, tag=tag)
        else:
            tickets = self._algorithm.combo_market_order(lean, units, asynchronous=True, tag=tag)
        return [SubmittedOrder(_key_of(t.symbol), int(t.order_id)) for t in tickets if self._valid(t, tag)]

    def submit_combo_limit(self, legs: Sequence[LegSpec], limit_price: float, tag: str) -> List[SubmittedOrder]:
        if round(limit_price, 6):
            return self.submit_combo(legs, tag, limit_price)
        self._refuse(tag, "ComboLimitOrder requires a limit price")  # LEAN throws
        return []

    def update_limit(self, order_id: int, limit_price: float) -> str:
        ticket: Optional[OrderTicket] = self._algorithm.transactions.get_order_ticket(order_id)  # None: unknown
        if ticket is None:
            return f"no ticket for order {order_id}"
        response = ticket.update_limit_price(limit_price)
        return "" if response.is_success else str(response.error_message or "refused")

    def submit_single(self, leg: LegSpec, tag: str) -> Optional[SubmittedOrder]:
        ticket = self._algorithm.market_order(self._algorithm.symbol_for(leg), leg.quantity, asynchronous=True, tag=tag)
        return SubmittedOrder(_key_of(ticket.symbol), int(ticket.order_id)) if self._valid(ticket, tag) else None

    def symbols_without_price(self, legs: Sequence[LegSpec]) -> List[str]:
        securities = self._algorithm.securities  # symbol_for subscribes the contract
        return [
            leg.symbol
            for leg in legs
            if float((s := securities[self._algorithm.symbol_for(leg)]).price) <= 0 or not bool(s.has_data)
        ]

    def _valid(self, ticket: OrderTicket, tag: str) -> bool:
        # a pre-order check refusal is an invalid ticket whose request response holds the reason (OrderTicket.cs
        # InvalidSubmitRequest); no order event carries it
        if ticket.status == OrderStatus.INVALID:
            self._refuse(tag, str(ticket.submit_request.response.error_message or ""))
        return bool(ticket.status != OrderStatus.INVALID)

    def _refuse(self, tag: str, reason: str) -> None:
        self._refusals.pop(tag, None)
        self._refusals[tag] = reason
        while len(self._refusals) > 100:
            del self._refusals[next(iter(self._refusals))]

    def refusal_reason(self, tag: str) -> str:
        return self._refusals.get(tag, "")

    def cancel(self, order_id: int) -> None:
        self._algorithm.transactions.cancel_order(order_id)

    def _held(self) -> Iterable[tuple[str, SecurityHolding]]:
        # contracts, and the underlying's shares (exercise/assignment)
        for holding in self._algorithm.portfolio.values():
            symbol = holding.symbol
            if holding.invested and (
                symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION)
                or (symbol == self._algorithm.underlying_symbol and symbol.security_type == SecurityType.EQUITY)
            ):
                key = _key_of(symbol)
                self._algorithm.known_symbols[key] = symbol
                yield key, holding

    def holdings(self) -> Mapping[str, int]:
        return {key: int(holding.quantity) for key, holding in self._held()}

    def average_prices(self) -> Mapping[str, float]:
        return {key: float(holding.average_price) for key, holding in self._held()}

    def open_order_ids(self) -> Sequence[int]:
        return [int(order.id) for order in self._algorithm.transactions.get_open_orders()]

    def order_ids_for_broker_id(self, broker_id: str) -> Sequence[int]:
        return [int(order.id) for order in self._algorithm.transactions.get_orders_by_brokerage_id(broker_id)]

    def open_orders_with_tag(self, tag: str) -> Sequence[SubmittedOrder]:
        return [
            SubmittedOrder(_key_of(order.symbol), int(order.id), tuple(str(b) for b in order.broker_id))
            for order in self._algorithm.transactions.get_open_orders()
            if str(order.tag or "") == tag
        ]


class CrashSafeTemplate(QCAlgorithm):
    def initialize(self) -> None:
        self._lock = threading.RLock()
        start = date.fromisoformat(self.get_parameter("start-date", "2024-01-02"))
        end = date.fromisoformat(self.get_parameter("end-date", "2024-03-28"))
        self.set_start_date(start.year, start.month, start.day)
        self.set_end_date(end.year, end.month, end.day)
        self.set_cash(float(self.get_parameter("cash", "250000")))

        self.underlying_ticker = self.get_parameter("underlying", "SPY")
        self.known_symbols: Dict[str, Symbol] = {}  # held or ordered
        self.slice_symbols: Dict[str, Symbol] = {}  # this slice's chain
        self.session_open: Optional[float] = None
        self._session_day: Optional[date] = None
        self._close_day: Optional[date] = None
        self._close: Optional[datetime] = None
        # contracts added before their first data get their last known price (SecurityService.InitializeSecurity)
        self.settings.seed_initial_prices = True
        self._add_securities()

        self._log = LeanLog(self)
        self._calls = StrategyCalls(self._log)
        self._params = Params.from_parameters(self._parameter_or_none)
        self._strategies = build_strategies(self._parameter_or_none, self._params)
        self._option.set_filter(self._option_universe)
        self._engine: Optional[TradingEngine] = None
        self._dashboard: Optional[LeanDashboard] = None
        # Engine/Engine.cs sets algorithm_id only after initialize (SetAlgorithmId, right before SetLocked): a new
        # backtest cannot name its namespace yet. It has nothing to load either (it starts clean), so its state
        # is bound in on_warmup_finished, when the id is known and before any order. Live state (one namespace
        # per project) and a resumed backtest (named by resume-run) load here as before.
        if self.live_mode or self.get_parameter("resume-run", "") or str(self.algorithm_id):
            self._bind_state(str(self.algorithm_id))

        interval = int(self.get_parameter("save-interval-minutes", "5"))
        final_hour, final_minute = (int(part) for part in self.get_parameter("final-save-time", "15:45").split(":"))
        # every_day() + every(): fires around the clock, weekends included, like LEAN does (DateRules.EveryDay,
        # TimeRules.Every)
        every = self.time_rules.every(timedelta(minutes=interval))
        self.schedule.on(self.date_rules.every_day(), every, self._save_dirty)
        self.schedule.on(self.date_rules.every_day(), self.time_rules.at(final_hour, final_minute), self._final_save)

    # -- set-up helpers -------------------------------------------------------------------------------------------

    def _bind_state(self, run_id: str) -> TradingEngine:
        """Open this run's namespace, build the engine and load (restore) its state. No orders."""
        namespace = Namespace.for_run(
            project_id=str(self.project_id),
            live_mode=bool(self.live_mode),
            run_id=run_id,
            resume_run=self.get_parameter("resume-run", ""),
            prefix=self.get_parameter("state-namespace", "crashsafe"),
        )
        store_port = LeanObjectStore(self)
        limits = record_limits(self._strategies)
        self._store = StateStore(store_port, namespace, lambda: self.utc_time, self._log, record_limits=limits)
        self._engine = TradingEngine(self._store, LeanBroker(self), self._params, self._log, self._strategies)
        with self._lock:
            self._engine.start(self.time)
        self._dashboard = LeanDashboard(self, self._engine, self._store, store_port, self._params)
        self._log.info(f"state namespace {namespace.root}")
        return self._engine

    def _backtest_run_key(self) -> str:
        """The algorithm id; should the engine not have set it (it always does before on_warmup_finished), a
        unique key logged so resume-run can name it."""
        run_id = str(self.algorithm_id)
        if run_id:
            return run_id
        key = f"run-{self.utc_time:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}"
        self.error(f"algorithm_id is empty after set-up; this backtest's state is under run key {key}")
        return key

    def _sample_charts(self, daily: bool, force: bool = False) -> None:
        if self._dashboard is not None:
            self._dashboard.sample(daily, force)

    def _parameter_or_none(self, name: str) -> Optional[str]:
        value = self.get_parameter(name)
        return None if value is None or value == "" else str(value)

    def _add_securities(self) -> None:
        ticker = self.underlying_ticker
        target = _INDEX_OPTION_TARGETS.get(ticker)
        if target is not None:
            self.underlying_symbol = self.add_index(ticker, Resolution.MINUTE).symbol
            option = self.add_index_option(self.underlying_symbol, target, Resolution.MINUTE)
        else:
            self.underlying_symbol = self.add_equity(ticker, Resolution.MINUTE).symbol
            option = self.add_option(ticker, Resolution.MINUTE)
        self._option = option
        self.option_symbol = option.symbol
        self.vix_symbol: Optional[Symbol] = None
        if self.get_parameter("use-vix", "true").lower() == "true":
            self.vix_symbol = self.add_index("VIX", Resolution.MINUTE).symbol

    # -- LEAN symbol bookkeeping (used by the adapters above) -------------------------------------------------------

    def remember_contract(self, contract: OptionContract) -> Optional[OptionQuote]:
        symbol = contract.symbol
        key = _key_of(symbol)
        self.slice_symbols[key] = symbol
        greeks = contract.greeks
        delta = float(greeks.delta) if greeks is not None else None
        return OptionQuote(
            key,
            self.underlying_ticker,
            _right(contract.right),
            float(contract.strike),
            contract.expiry.date(),
            float(contract.bid_price),
            float(contract.ask_price),
            delta if delta else None,
        )

    def _forget_expired_symbols(self) -> None:
        """Bounds known_symbols: a contract past its expiry date and not held is dropped."""
        for key, symbol in list(self.known_symbols.items()):
            held = self.securities.contains_key(symbol) and self.portfolio[symbol].invested
            if symbol.id.date.date() < self.time.date() and not held:
                del self.known_symbols[key]

    def symbol_for(self, leg: LegSpec) -> Symbol:
        """The LEAN Symbol of a leg, rebuilt from its stored fields after a restart, and subscribed."""
        if leg.symbol == self.underlying_ticker:
            return self.underlying_symbol  # shares an exercise or assignment delivered
        symbol = self.known_symbols.get(leg.symbol) or self.slice_symbols.get(leg.symbol)
        if symbol is None:
            right = OptionRight.PUT if leg.right == Right.PUT else OptionRight.CALL
            style = OptionStyle.EUROPEAN if self.underlying_ticker in _INDEX_OPTION_TARGETS else OptionStyle.AMERICAN
            expiry = datetime(leg.expiry.year, leg.expiry.month, leg.expiry.day)
            target = _INDEX_OPTION_TARGETS.get(self.underlying_ticker)
            if target is not None:
                symbol = Symbol.create_option(
                    self.underlying_symbol, target, Market.USA, style, right, leg.strike, expiry
                )
            else:
                symbol = Symbol.create_option(self.underlying_symbol, Market.USA, style, right, leg.strike, expiry)
        self.known_symbols[leg.symbol] = symbol
        if not self.securities.contains_key(symbol):
            if symbol.security_type == SecurityType.INDEX_OPTION:
                self.add_index_option_contract(symbol, Resolution.MINUTE)
            else:
                self.add_option_contract(symbol, Resolution.MINUTE)
        return symbol

    def todays_close(self) -> Optional[datetime]:
        """Today's regular-session close of the underlying's exchange, early closes included (LEAN's
        SecurityExchangeHours.GetNextMarketClose from today's midnight: the search is non-inclusive, so asking
        from the close itself would give tomorrow's). None on a day without a session."""
        today = self.time.date()
        if self._close_day != today:
            self._close_day = today
            midnight = datetime(today.year, today.month, today.day)
            hours = self.securities[self.underlying_symbol].exchange.hours
            close = hours.get_next_market_close(midnight, False)
            self._close = close if close.date() == today else None
        return self._close

    # -- LEAN event handlers ---------------------------------------------------------------------------------------

    def on_warmup_finished(self) -> None:
        engine = self._engine or self._bind_state(self._backtest_run_key())
        with self._lock:
            engine.on_warmup_finished(LeanMarketView(self, None))
            self._sample_charts(daily=True, force=True)

    def on_data(self, data: Slice) -> None:
        engine = self._engine
        if self.is_warming_up or engine is None:
            return
        with self._lock:
            self._track_session_open(data)
            self.slice_symbols = {}
            engine.on_market(LeanMarketView(self, data))

    def on_order_event(self, order_event: OrderEvent) -> None:
        # An exception escaping here stops the algorithm (BrokerageTransactionHandler.HandleOrderEvents): the engine
        # never raises, and the
        # conversion is guarded too.
        with self._lock:
            try:
                event = self._convert(order_event)
            # builtins.Exception: `from System import *` shadows Python's Exception in the stubs' view
            except builtins.Exception as error:  # must not escape into LEAN
                self.error(f"order event {order_event.order_id} could not be read: {error!r}")
                return
            if self._engine is None:
                self.error(f"order event {event.order_id} before the state was bound: not booked")
                return
            # the algorithm's clock now (not the last bar's): records this event creates are stamped with it
            self._engine.on_order_event(event, self.time)

    def on_end_of_algorithm(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.end_of_run(self.time)
            self._sample_charts(daily=True, force=True)

    # -- scheduled saves -------------------------------------------------------------------------------------------

    def _save_dirty(self) -> None:
        if self.is_warming_up or self._engine is None:
            return
        with self._lock:  # live: scheduled events run on LEAN's real-time thread
            self._engine.scheduled_save()
            if self.securities[self.underlying_symbol].exchange.exchange_open:  # it fires 24/7: charts in session
                self._sample_charts(daily=False)

    def _final_save(self) -> None:
        if self.is_warming_up or self._engine is None:
            return
        with self._lock:
            self._engine.final_save()
            self._sample_charts(daily=True)
            self._forget_expired_symbols()

    # -- conversions -----------------------------------------------------------------------------------------------

    def _track_session_open(self, data: Slice) -> None:
        today = self.time.date()
        if self._session_day != today:
            self._session_day = today
            self.session_open = None
        if self.session_open is None and data.bars.contains_key(self.underlying_symbol):
            self.session_open = float(data.bars[self.underlying_symbol].open)

    def _option_universe(self, universe: OptionFilterUniverse) -> OptionFilterUniverse:
        """Option.SetFilter(PyObject), run daily: the union of what the strategies may choose at the universe's
        price (universe_reach): LEAN's Strikes and Expiration (days from the next trading day:
        AdjustExpirationReferenceDate), then Contracts keeps what lies inside a strategy's reach."""
        hours, day, data = self._option.exchange.hours, universe.local_time, universe.underlying
        day = day if hours.is_date_open(day) else hours.get_next_trading_day(day)
        price = universe_price(None if data is None else data.price)
        spot = price or REFERENCE_PRICE.get(self.underlying_ticker, 1000.0)  # no price: strikes are not judged
        reach = universe_reach(self._strategies, spot, self.underlying_ticker, self._calls.call)
        keep = reach.keeper(day.date(), price)
        universe.strikes(-reach.strikes_below, reach.strikes_above).expiration(reach.min_days, reach.max_days)
        universe.contracts(lambda d: [c for c in d if keep(_right(c.id.option_right), c.id.date, c.id.strike_price)])
        return universe

    def _underlying_close(self) -> Optional[float]:
        # DefaultExerciseModel judges an exercise on option.Underlying.Close
        close = float(self.securities[self.underlying_symbol].close)
        return close if close > 0 else None

    def _convert(self, order_event: OrderEvent) -> OrderEventData:
        order = self.transactions.get_order_by_id(order_event.order_id)
        tag = str(order.tag) if order is not None and order.tag else ""
        broker_ids = tuple(str(broker_id) for broker_id in order.broker_id) if order is not None else ()
        self.known_symbols.setdefault(_key_of(order_event.symbol), order_event.symbol)
        return OrderEventData(
            order_id=int(order_event.order_id),
            event_id=int(order_event.id),
            symbol=_key_of(order_event.symbol),
            status=_EVENT_STATUS.get(order_event.status, EventStatus.NEW),
            fill_quantity=int(order_event.fill_quantity),
            fill_price=float(order_event.fill_price),
            tag=tag,
            utc_time=order_event.utc_time,
            broker_ids=broker_ids,
            is_assignment=bool(order_event.is_assignment),
            message=str(order_event.message or ""),
            exercise=order is not None and order.type == OrderType.OPTION_EXERCISE,
            in_the_money=bool(order_event.is_in_the_money),
            cash_settled=order_event.symbol.security_type == SecurityType.INDEX_OPTION,
            underlying_price=self._underlying_close(),
        )
