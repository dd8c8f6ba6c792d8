"""QCAlgorithm with the snake_case members main.py uses, driven by the harness (tests/harness/simulation.py).

LEAN constructs the algorithm with no arguments, so the harness hands the environment over through
`pending_environment(env)` around the constructor call. Follows LEAN: `is_warming_up` is True from construction
until the end of start-up (QCAlgorithm.PostInitialize); `time` is naive New York time, `utc_time` naive UTC
(QCAlgorithm.Time, UtcTime); orders from
`initialize` are refused (INVALID); `get_parameter(name, default=None)` returns strings; `set_start_date`/
`set_end_date` are ignored in live mode and `set_cash` is overwritten by the brokerage cash
(BrokerageSetupHandler.Setup).
`algorithm_id` is "" until the engine calls `set_algorithm_id` after set-up (Algorithm/QCAlgorithm.cs
`_algorithmId = ""`; Engine/Engine.cs calls `algorithm.SetAlgorithmId(job.AlgorithmId)` after `Setup.Setup`
returns, right before `SetLocked`; LEAN 24863901). `combo_market_order` raises ValueError (for LEAN's
ArgumentException) when the GCD of the leg quantities is not 1 (Algorithm/QCAlgorithm.Trading.cs
`CheckComboOrderSizing`, called by `SubmitComboOrder`); so does `combo_limit_order`, which also refuses a
zero limit and legs with their own limit price (`ComboLimitOrder`).
A security has a price only once it has data (Common/Securities/Security.cs `HasData`): from its first slice,
at once when it is a chain contract of the option universe, or when seeded (`settings.seed_initial_prices`,
Common/AlgorithmSettings.cs `SeedInitialPrices`, default False, applied in Common/Securities/SecurityService.cs
`InitializeSecurity`); live, the underlying of an option subscription is seeded (Algorithm/QCAlgorithm.Universe.cs,
`LiveMode && !Settings.SeedInitialPrices`).
Differs from LEAN: only USD, no warm-up period support (`set_warm_up` is absent), one time zone; and a chain
contract of the option universe has a price even before the first slice of a run (in `on_warmup_finished`),
where LEAN selects the universe, and so gives its contracts data, only with that first slice.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple
from zoneinfo import ZoneInfo

from tests.harness.lean_stub.charting import Charting
from tests.harness.lean_stub.enums import AlgorithmMode, DeploymentTarget, OptionStyle, Resolution, SecurityType
from tests.harness.lean_stub.market_data import DataDictionary, OptionChains, OptionFilter, Slice, TradeBar, in_universe
from tests.harness.lean_stub.option_universe import FilterFunction
from tests.harness.lean_stub.orders import Leg, OrderEvent, OrderTicket
from tests.harness.lean_stub.securities import Securities, Security, SecurityPortfolioManager
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import level_scale
from tests.harness.market_calendar import is_market_open
from tests.harness.scheduler import AlgorithmRuntimeError, DateRules, ScheduleManager, TimeRules
from tests.harness.transactions import Transactions

if TYPE_CHECKING:
    from tests.harness.simulation import AlgorithmEnvironment

NEW_YORK = ZoneInfo("America/New_York")
_PENDING: List[AlgorithmEnvironment] = []


@contextmanager
def pending_environment(environment: AlgorithmEnvironment) -> Iterator[None]:
    _PENDING.append(environment)
    try:
        yield
    finally:
        _PENDING.remove(environment)


class AlgorithmSettings:
    """Common/AlgorithmSettings.cs: only the setting the harness models."""

    def __init__(self) -> None:
        self.seed_initial_prices = False


def check_combo_order_sizing(legs: List[Leg], quantity: int) -> None:
    """QCAlgorithm.CheckComboOrderSizing (Algorithm/QCAlgorithm.Trading.cs, LEAN 24863901): legs give the ratio
    (GCD of the leg quantities 1), the combo quantity the size; anything else raises with LEAN's message."""
    divisor = 0
    for leg in legs:
        divisor = math.gcd(divisor, int(leg.quantity))
    if divisor != 1:
        sized = ", ".join(f"{leg.quantity} {leg.symbol}" for leg in legs)
        reduced = ", ".join(f"{int(leg.quantity) // max(divisor, 1)} {leg.symbol}" for leg in legs)
        raise ValueError(
            "The global combo quantity should be used to increase or reduce the size of the order, "
            "while the leg quantities should be used to specify the ratio of the order. "
            "The combo order quantities should be reduced "
            f"from {quantity}x({sized}) to {quantity * divisor}x({reduced})."
        )


class QCAlgorithm(Charting):
    def __init__(self) -> None:
        if not _PENDING:
            raise RuntimeError("construct QCAlgorithm subclasses through the harness (tests/harness/simulation.py)")
        env = _PENDING[-1]
        self._env = env
        self._time: datetime = env.now
        self._utc_time: datetime = self.to_utc(self._time)
        self._step_index: Optional[int] = env.market.index_at_or_before(env.now)
        self.is_warming_up = True
        self.live_mode = env.live_mode
        self.algorithm_mode = AlgorithmMode.LIVE if env.live_mode else AlgorithmMode.BACKTESTING
        self.deployment_target = DeploymentTarget.LOCAL_PLATFORM
        self.project_id = env.project_id
        self._algorithm_id = ""  # QCAlgorithm._algorithmId: the engine sets it after initialize
        self.settings = AlgorithmSettings()
        self.object_store = env.store
        self.securities = Securities()
        self.portfolio = SecurityPortfolioManager(self.securities)
        self.date_rules = DateRules()
        self.time_rules = TimeRules()
        self.schedule = ScheduleManager(lambda: self._time)
        self.transactions = Transactions(self, env.brokerage, env.crash_plan)
        self.start_date: Optional[date] = None
        self.end_date: Optional[date] = None
        self.logs: List[Tuple[datetime, str, str]] = []
        self._option_styles: Dict[Symbol, OptionStyle] = {}
        self._quit = False
        self._init_charting()

    # -- identity --

    @property
    def algorithm_id(self) -> str:
        return self._algorithm_id

    def set_algorithm_id(self, algorithm_id: str) -> None:
        """Engine/Engine.cs calls it once set-up (initialize) is complete, right before SetLocked."""
        self._algorithm_id = algorithm_id

    # -- time --

    @property
    def time(self) -> datetime:
        return self._time

    @property
    def utc_time(self) -> datetime:
        """Algorithm/QCAlgorithm.cs `UtcTime` reads the TimeKeeper's stored UtcTime (Common/TimeKeeper.cs), set
        with the local time on each time update: converted once per update here too, not on every read."""
        return self._utc_time

    @staticmethod
    def to_utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=NEW_YORK).astimezone(UTC).replace(tzinfo=None)

    def _set_time(self, moment: datetime, index: Optional[int] = None) -> None:
        self._time = moment
        self._utc_time = self.to_utc(moment)
        self._step_index = index if index is not None else self._env.market.index_at_or_before(moment)

    def in_option_universe(self, symbol: Symbol, index: int) -> bool:
        """Is this contract a member of an added option universe at the step (so it has the chain's data)?"""
        if symbol.security_type not in (SecurityType.OPTION, SecurityType.INDEX_OPTION) or symbol.is_canonical:
            return False
        if symbol.underlying is None:
            return False
        canonical = symbol.canonical
        if canonical not in self._option_styles:
            return False
        option_filter = self.securities[canonical].option_filter
        if not isinstance(option_filter, OptionFilter | FilterFunction):
            return False
        return in_universe(self._env.market, index, option_filter, symbol)

    def exchange_is_open_now(self) -> bool:
        index = self._step_index
        return index is not None and self._env.market.steps[index].time == self._time and is_market_open(self._time)

    # -- set-up --

    def initialize(self) -> None:
        pass

    def set_start_date(self, year: int | date, month: int = 1, day: int = 1) -> None:
        self.start_date = year if isinstance(year, date) else date(year, month, day)

    def set_end_date(self, year: int | date, month: int = 1, day: int = 1) -> None:
        self.end_date = year if isinstance(year, date) else date(year, month, day)

    def set_cash(self, cash: float) -> None:
        self.portfolio.set_cash(float(cash))

    def get_parameter(self, name: str, default_value: Any = None) -> Any:
        value = self._env.parameters.get(name)
        return default_value if value is None else value

    def log(self, message: str) -> None:
        self.logs.append((self._time, "log", str(message)))

    def debug(self, message: str) -> None:
        self.logs.append((self._time, "debug", str(message)))

    def error(self, message: str) -> None:
        self.logs.append((self._time, "error", str(message)))

    def quit(self, message: str = "") -> None:
        self._quit = True

    # -- securities --

    def _add(self, symbol: Symbol, seed: bool = False) -> Security:
        """A new security has data from the next slice on; seeded ones have the last known price at once."""
        if self.securities.contains_key(symbol):
            return self.securities[symbol]
        security = self.securities.add(Security(symbol, self._env.prices_for(self)))
        index = self._step_index
        security.data_from = 0 if index is None else index + 1
        if (seed or self.settings.seed_initial_prices) and index is not None:
            security.seeded = True
        return security

    def _add_underlying(self, symbol: Symbol) -> None:
        # QCAlgorithm.Universe.cs: live, an option's underlying without data is seeded
        underlying = self._add(symbol)
        if self.live_mode and self._step_index is not None:
            underlying.seeded = True

    def add_equity(
        self, ticker: str, resolution: Resolution = Resolution.MINUTE, *args: object, **kwargs: object
    ) -> Security:
        return self._add(Symbol.create(ticker, SecurityType.EQUITY))

    def add_index(
        self, ticker: str, resolution: Resolution = Resolution.MINUTE, *args: object, **kwargs: object
    ) -> Security:
        return self._add(Symbol.create(ticker, SecurityType.INDEX))

    def _add_canonical(self, underlying: Symbol, target: Optional[str], style: OptionStyle) -> Security:
        canonical = Symbol.create_canonical_option(underlying, target)
        security = self._add(canonical)
        if not isinstance(security.option_filter, OptionFilter | FilterFunction):
            security.option_filter = OptionFilter()
        self._option_styles[canonical] = style
        return security

    def add_option(
        self, underlying: str | Symbol, resolution: Resolution = Resolution.MINUTE, *args: object, **kwargs: object
    ) -> Security:
        symbol = underlying if isinstance(underlying, Symbol) else Symbol.create(underlying, SecurityType.EQUITY)
        self._add_underlying(symbol)
        return self._add_canonical(symbol, None, OptionStyle.AMERICAN)

    def add_index_option(self, underlying: str | Symbol, *args: object, **kwargs: object) -> Security:
        symbol = underlying if isinstance(underlying, Symbol) else Symbol.create(underlying, SecurityType.INDEX)
        target = args[0] if args and isinstance(args[0], str) else None
        self._add_underlying(symbol)
        return self._add_canonical(symbol, target, OptionStyle.EUROPEAN)

    def add_option_contract(self, symbol: Symbol, *args: object, **kwargs: object) -> Security:
        """Not seeded (SecuritySeeder.Null unless settings.seed_initial_prices): no price before its first slice,
        unless the contract is already in the option universe (then it has the chain's data)."""
        if symbol.underlying is not None:
            self._add_underlying(symbol.underlying)
        return self._add(symbol)

    add_index_option_contract = add_option_contract

    def add_security(self, symbol: Symbol, *args: object, **kwargs: object) -> Security:
        return self._add(symbol)

    # -- orders --

    def market_order(
        self,
        symbol: Symbol,
        quantity: float,
        asynchronous: bool = False,
        tag: str = "",
        order_properties: object = None,
    ) -> OrderTicket:
        return self.transactions.submit([Leg.create(symbol, int(quantity))], 1, tag, asynchronous, combo=False)[0]

    def combo_market_order(
        self, legs: List[Leg], quantity: int, asynchronous: bool = False, tag: str = "", order_properties: object = None
    ) -> List[OrderTicket]:
        check_combo_order_sizing(list(legs), int(quantity))
        return self.transactions.submit(list(legs), int(quantity), tag, asynchronous, combo=True)

    def combo_limit_order(  # noqa: PLR0917
        self,
        legs: List[Leg],
        quantity: int,
        limit_price: float,
        asynchronous: bool = False,
        tag: str = "",
        order_properties: object = None,
    ) -> List[OrderTicket]:
        """QCAlgorithm.ComboLimitOrder (Algorithm/QCAlgorithm.Trading.cs): ArgumentException (ValueError here) for
        a zero limit or a leg with its own limit price, then SubmitComboOrder (CheckComboOrderSizing first)."""
        if limit_price == 0:
            raise ValueError("ComboLimitOrder requires a limit price")
        if any(leg.order_price for leg in legs):
            raise ValueError("ComboLimitOrder does not support limit prices for individual legs")
        check_combo_order_sizing(list(legs), int(quantity))
        return self.transactions.submit(list(legs), int(quantity), tag, asynchronous, True, float(limit_price))

    def apply_fill(self, symbol: Symbol, quantity: float, price: float, settle_cash: bool = True) -> None:
        """The portfolio side of a fill (holding + cash); auto-subscribes a symbol it does not know."""
        if not self.securities.contains_key(symbol):
            self._add(symbol)
        self.securities[symbol].holdings.add_fill(quantity, price)
        if settle_cash:
            multiplier = 100 if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION) else 1
            self.portfolio.cash -= quantity * price * multiplier

    # -- handlers (LEAN calls them; subclasses override) --

    def on_data(self, data: Slice) -> None:
        pass

    def on_order_event(self, order_event: OrderEvent) -> None:
        pass

    def on_warmup_finished(self) -> None:
        pass

    def on_end_of_algorithm(self) -> None:
        pass

    def dispatch_order_event(self, event: OrderEvent) -> None:
        try:
            self.on_order_event(event)
        except Exception as error:  # SimulatedCrash (BaseException) passes through
            raise AlgorithmRuntimeError("Order Event Handler", error) from error

    # -- the slice the harness hands to on_data --

    def make_slice(self, index: int) -> Slice:
        step = self._env.market.steps[index]
        bars = DataDictionary()
        for security in self.securities.values():
            symbol = security.symbol
            if symbol.security_type == SecurityType.EQUITY:
                bars[symbol] = TradeBar(
                    symbol,
                    step.time,
                    step.time,
                    step.open,
                    max(step.open, step.price),
                    min(step.open, step.price),
                    step.price,
                )
            elif symbol.security_type == SecurityType.INDEX and symbol.value == "VIX":
                bars[symbol] = TradeBar(symbol, step.time, step.time, step.vix, step.vix, step.vix, step.vix)
            elif symbol.security_type == SecurityType.INDEX:  # SPX: its own level, not VIX's
                scale = level_scale(symbol.value)
                low, high = sorted((step.open * scale, step.price * scale))
                bars[symbol] = TradeBar(
                    symbol,
                    step.time,
                    step.time,
                    round(step.open * scale, 2),
                    round(high, 2),
                    round(low, 2),
                    round(step.price * scale, 2),
                )
        filters: Dict[Symbol, OptionFilter | FilterFunction] = {}
        for canonical in self._option_styles:
            option_filter = self.securities[canonical].option_filter
            filters[canonical] = (
                option_filter if isinstance(option_filter, OptionFilter | FilterFunction) else OptionFilter()
            )
        return Slice(step.time, bars, OptionChains(self._env.market, index, filters, self._option_styles))
