"""Slice, TradeBar, OptionChain(s), OptionContract, Greeks: LEAN's data objects over the synthetic market.

Follows LEAN 24863901: `slice.option_chains` maps the canonical option Symbol to its chain, filtered by the
option's `set_filter(min_strike, max_strike, min_expiry, max_expiry)`; min/max strike COUNT listed strikes
around the underlying price, not points (Common/Securities/Option/OptionFilterUniverse.cs `Strikes`: binary
search of the price among the distinct listed strikes, `index + minStrike .. index + maxStrike`, one less
at the top when the price is not a listed strike); `contract.expiry` is the expiry date at 00:00
(Common/Data/Market/BaseContract.cs). The chain's contracts are the option universe: they have data (a price)
at that slice (`strike_window` is shared with the harness's has-data check). With a filter function
(`set_filter(function)`, Option.SetFilter(PyObject)) the chain is the day's selection of that function
(option_universe.FilterFunction, made once a trading day as LEAN does) that is still listed at the slice.
Differs from LEAN: the chain is built lazily on `get()`/`[]` (LEAN fills it whether read or not); LEAN selects
the universe once a day from daily universe data, the harness at every slice for the four-number filter;
greeks are Black-Scholes at the harness's skewed volatility.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from core.records import Right
from tests.harness.lean_stub.enums import OptionRight, OptionStyle
from tests.harness.lean_stub.option_universe import FilterFunction, contract_symbol, strike_window
from tests.harness.lean_stub.symbols import Symbol

if TYPE_CHECKING:
    from tests.harness.market import ContractQuote, SyntheticMarket


@dataclass(frozen=True)
class TradeBar:
    symbol: Symbol
    time: datetime
    end_time: datetime
    open: float
    high: float
    low: float
    close: float

    @property
    def price(self) -> float:
        return self.close


@dataclass(frozen=True)
class Greeks:
    delta: float
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    rho: float = 0.0


class OptionContract:
    __slots__ = ("_quote", "symbol", "underlying_last_price")

    def __init__(self, symbol: Symbol, quote: ContractQuote, underlying_price: float) -> None:
        self.symbol = symbol
        self._quote = quote
        self.underlying_last_price = underlying_price

    @property
    def strike(self) -> float:
        return self._quote.strike

    @property
    def expiry(self) -> datetime:
        return datetime(self._quote.expiry.year, self._quote.expiry.month, self._quote.expiry.day)

    @property
    def right(self) -> OptionRight:
        return OptionRight.PUT if self._quote.right == Right.PUT else OptionRight.CALL

    @property
    def bid_price(self) -> float:
        return self._quote.bid

    @property
    def ask_price(self) -> float:
        return self._quote.ask

    @property
    def last_price(self) -> float:
        return round(self._quote.price, 2)

    @property
    def theoretical_price(self) -> float:
        return self._quote.price

    @property
    def greeks(self) -> Greeks:
        return Greeks(self._quote.delta, self._quote.gamma)

    @property
    def underlying_symbol(self) -> Optional[Symbol]:
        return self.symbol.underlying


@dataclass(frozen=True)
class OptionFilter:
    min_strike: int = -1
    max_strike: int = 1
    min_expiry: timedelta = timedelta(0)
    max_expiry: timedelta = timedelta(days=35)


class OptionChain:
    def __init__(self, canonical: Symbol, contracts: List[OptionContract]) -> None:
        self.symbol = canonical
        self.contracts = {contract.symbol: contract for contract in contracts}
        self._list = contracts

    def __iter__(self) -> Iterator[OptionContract]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)


def _symbol_for(canonical: Symbol, quote: ContractQuote, style: OptionStyle) -> Symbol:
    return contract_symbol(canonical, quote.expiry, quote.strike, quote.right, style)


def universe_window(
    market: SyntheticMarket, index: int, underlying: str, option_filter: OptionFilter
) -> Optional[Tuple[float, float]]:
    """The strike window of the option universe at a step (cached per step on the market)."""
    key = (index, underlying, option_filter.min_strike, option_filter.max_strike)
    cache = market.universe_windows
    if key not in cache:
        level = market.level(index, underlying)
        cache[key] = strike_window(
            market.strikes(level, underlying), level, option_filter.min_strike, option_filter.max_strike
        )
    return cache[key]


def in_universe(
    market: SyntheticMarket, index: int, option_filter: OptionFilter | FilterFunction, symbol: Symbol
) -> bool:
    """Is this contract in its option universe at the step (a chain member, with data)?"""
    if symbol.underlying is None:
        return False
    if isinstance(option_filter, FilterFunction):
        _, members = option_filter.selection(market, index, symbol.canonical, symbol.id.option_style)
        expiry = symbol.id.date.date()
        return symbol in members and market.is_listed(index, symbol.underlying.value, expiry, symbol.id.strike_price)
    window = universe_window(market, index, symbol.underlying.value, option_filter)
    if window is None or not window[0] <= symbol.id.strike_price <= window[1]:
        return False
    today = market.steps[index].time.date()
    expiry = symbol.id.date.date()
    if not today + option_filter.min_expiry <= expiry <= today + option_filter.max_expiry:
        return False
    return market.is_listed(index, symbol.underlying.value, expiry, symbol.id.strike_price)


class OptionChains:
    """`slice.option_chains`: canonical Symbol -> OptionChain, built on first access per step."""

    def __init__(
        self,
        market: Optional[SyntheticMarket],
        index: Optional[int],
        options: Dict[Symbol, OptionFilter | FilterFunction],
        styles: Dict[Symbol, OptionStyle],
    ) -> None:
        self._market = market
        self._index = index
        self._options = options
        self._styles = styles
        self._built: Dict[Symbol, OptionChain] = {}

    def _build(self, canonical: Symbol) -> Optional[OptionChain]:
        if canonical in self._built:
            return self._built[canonical]
        option_filter = self._options.get(canonical)
        if option_filter is None or self._market is None or self._index is None:
            return None
        step = self._market.steps[self._index]
        today: date = step.time.date()
        assert canonical.underlying is not None
        underlying = canonical.underlying.value
        style = self._styles.get(canonical, OptionStyle.AMERICAN)
        if isinstance(option_filter, FilterFunction):
            chain = OptionChain(canonical, self._selected(option_filter, canonical, style))
            self._built[canonical] = chain
            return chain
        quotes = self._market.chain(self._index, underlying=underlying)
        window = universe_window(self._market, self._index, underlying, option_filter)
        low, high = window if window is not None else (1.0, 0.0)
        level = self._market.level(self._index, underlying)
        first = today + option_filter.min_expiry
        last = today + option_filter.max_expiry
        contracts = [
            OptionContract(_symbol_for(canonical, quote, style), quote, level)
            for quote in quotes
            if low <= quote.strike <= high and first <= quote.expiry <= last
        ]
        chain = OptionChain(canonical, contracts)
        self._built[canonical] = chain
        return chain

    def _selected(self, option_filter: FilterFunction, canonical: Symbol, style: OptionStyle) -> List[OptionContract]:
        """The day's selection of a filter function, priced at this step: the contracts still listed now."""
        market, index = self._market, self._index
        assert market is not None and index is not None and canonical.underlying is not None
        underlying = canonical.underlying.value
        level = market.level(index, underlying)
        ordered, _ = option_filter.selection(market, index, canonical, style)
        contracts = []
        for symbol in ordered:
            sid = symbol.id
            expiry, right = sid.date.date(), Right.PUT if sid.option_right == OptionRight.PUT else Right.CALL
            if market.is_listed(index, underlying, expiry, sid.strike_price):
                quote = market.quote(index, expiry, sid.strike_price, right, underlying)
                contracts.append(OptionContract(symbol, quote, level))
        return contracts

    def get(self, canonical: Symbol, default: Optional[OptionChain] = None) -> Optional[OptionChain]:
        chain = self._build(canonical)
        return chain if chain is not None else default

    def __getitem__(self, canonical: Symbol) -> OptionChain:
        chain = self._build(canonical)
        if chain is None:
            raise KeyError(canonical)
        return chain

    def contains_key(self, canonical: Symbol) -> bool:
        return canonical in self._options and self._market is not None and self._index is not None

    __contains__ = contains_key

    def keys(self) -> List[Symbol]:
        return list(self._options) if self._market is not None and self._index is not None else []


class DataDictionary(Dict[Symbol, TradeBar]):
    """LEAN's DataDictionary: a dict with `contains_key`."""

    def contains_key(self, symbol: Symbol) -> bool:
        return symbol in self


class Slice:
    def __init__(self, time: datetime, bars: DataDictionary, option_chains: OptionChains) -> None:
        self.time = time
        self.bars = bars
        self.option_chains = option_chains

    def contains_key(self, symbol: Symbol) -> bool:
        return symbol in self.bars
