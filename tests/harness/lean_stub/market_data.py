"""Slice, TradeBar, OptionChain(s), OptionContract, Greeks: LEAN's data objects over the synthetic market.

Follows LEAN: `slice.option_chains` maps the canonical option Symbol to its chain, filtered by the
option's `set_filter(min_strike, max_strike, min_expiry, max_expiry)` (strike counts around the money,
expiry in days) (Common/Data/Market/OptionContract.cs); `contract.expiry` is the expiry date at 00:00.
Differs from LEAN: the chain is built lazily on `get()`/`[]` (LEAN fills it whether read or not), and greeks are
Black-Scholes at the market's one volatility.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from persistence.records import Right
from tests.harness.lean_stub.enums import OptionRight, OptionStyle
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


_SYMBOLS: Dict[Tuple[Symbol, date, float, Right], Symbol] = {}  # Symbols are immutable: build each once


def _symbol_for(canonical: Symbol, quote: ContractQuote, style: OptionStyle) -> Symbol:
    key = (canonical, quote.expiry, quote.strike, quote.right)
    symbol = _SYMBOLS.get(key)
    if symbol is None:
        symbol = _SYMBOLS[key] = _new_symbol(canonical, quote, style)
    return symbol


def _new_symbol(canonical: Symbol, quote: ContractQuote, style: OptionStyle) -> Symbol:
    assert canonical.underlying is not None
    right = OptionRight.PUT if quote.right == Right.PUT else OptionRight.CALL
    expiry = datetime(quote.expiry.year, quote.expiry.month, quote.expiry.day)
    return Symbol.create_option(canonical.underlying, canonical.id.symbol, "usa", style, right, quote.strike, expiry)


class OptionChains:
    """`slice.option_chains`: canonical Symbol -> OptionChain, built on first access per step."""

    def __init__(
        self,
        market: Optional[SyntheticMarket],
        index: Optional[int],
        options: Dict[Symbol, OptionFilter],
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
        quotes = self._market.chain(self._index)
        strikes = sorted({quote.strike for quote in quotes})
        atm = min(range(len(strikes)), key=lambda i: abs(strikes[i] - step.price)) if strikes else 0
        low = strikes[max(0, atm + option_filter.min_strike)] if strikes else 0.0
        high = strikes[min(len(strikes) - 1, atm + option_filter.max_strike)] if strikes else 0.0
        first = today + option_filter.min_expiry
        last = today + option_filter.max_expiry
        style = self._styles.get(canonical, OptionStyle.AMERICAN)
        contracts = [
            OptionContract(_symbol_for(canonical, quote, style), quote, step.price)
            for quote in quotes
            if low <= quote.strike <= high and first <= quote.expiry <= last
        ]
        chain = OptionChain(canonical, contracts)
        self._built[canonical] = chain
        return chain

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
