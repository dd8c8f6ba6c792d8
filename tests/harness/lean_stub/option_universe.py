"""OptionFilterUniverse and an option's filter function (`option.set_filter(function)`), over the synthetic market.

Follows LEAN 24863901:
- Common/Securities/Option/Option.cs `SetFilter(PyObject universeFunc)`: the function is called with the
  OptionFilterUniverse; its result: None -> the universe as its calls narrowed it; an OptionFilterUniverse ->
  that; a list of Symbols -> `WhereContains(list)` (the universe's contracts that are in the list); anything else
  -> ArgumentException (ValueError here). Then `ApplyTypesFilter`.
- Common/Securities/ContractSecurityFilterUniverse.cs: every filter narrows `Data` in place and returns the same
  universe, so chained calls narrow one after the other. `Expiration(min, max)` (TimeSpans or int days) keeps
  expiry dates from reference + min to reference + max, the reference being LocalTime's date moved to the next
  trading day when the option's exchange is closed on it (OptionFilterUniverse.AdjustExpirationReferenceDate).
  `Contracts(PyObject)`: a callable is the selector `Func<IEnumerable<OptionUniverse>, IEnumerable<Symbol>>`,
  called with the contracts the filters before it left; the Symbols it returns become the universe (the
  `AllSymbols` setter: the data of each Symbol, a bare data item for a Symbol that had none); a list of Symbols is
  set directly. `ApplyTypesFilter` with the default type (Standard | Weekly) keeps every contract: weeklys are
  included by default.
- Common/Securities/Option/OptionFilterUniverse.cs `Strikes(min, max)`: counts distinct listed strikes of the
  current data around `Underlying.Price` (strike_window); without underlying data it changes
  nothing. `CallsOnly`/`PutsOnly`: `Contracts` by `Symbol.ID.OptionRight`.
- Common/Data/UniverseSelection/OptionChainUniverse.cs `SelectSymbols`: `Refresh(data, data.Underlying,
  localEndTime)`, then the option's ContractFilter. Selection is daily (ContractSecurityFilterUniverse.cs
  `OnlyApplyFilterAtMarketOpen`: "Filters are always non-dynamic ... only applied daily"), at the midnight that
  ends the previous trading day: Monday's at Saturday 00:00 (the AdjustExpirationReferenceDate remark).
- Common/Data/UniverseSelection/BaseChainUniverseData.cs: a data item's `id` is its Symbol's ID; its `Symbol`.
Differs from LEAN: a data item has no greeks, implied volatility or open interest (the Delta/IV/OpenInterest
filters are not modelled, nor StandardsOnly/WeeklysOnly: they raise AttributeError); the underlying of a selection
is the harness's last level before the selected day (the first step's on a run's first day), where LEAN reads
the universe file's underlying row; `Strikes` recomputes the distinct strikes at each call (LEAN caches them for
the exchange date: the same when, as in main.py, Strikes is the first call of the day); a selection is made when
the day's chain or a contract's data is first asked for, with the filter set then (LEAN applies a filter set
during the day from the next selection).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple

from core.records import Right
from tests.harness.lean_stub.enums import OptionRight, OptionStyle
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market_calendar import is_trading_day, next_trading_day, option_expiries, trading_day_at_or_before

if TYPE_CHECKING:
    from tests.harness.market import SyntheticMarket


@dataclass(frozen=True)
class UnderlyingData:
    """The selection's underlying data point (BaseData: `price`)."""

    symbol: Symbol
    price: float


class OptionUniverse:
    """One contract's universe data (Common/Data/UniverseSelection/OptionUniverse.cs): `symbol` and `id` only."""

    __slots__ = ("symbol",)

    def __init__(self, symbol: Symbol) -> None:
        self.symbol = symbol

    @property
    def id(self) -> Any:
        return self.symbol.id


def strike_window(
    strikes: List[float], price: float, min_strike: int, max_strike: int
) -> Optional[Tuple[float, float]]:
    """OptionFilterUniverse.Strikes: the lowest and highest strike kept, or None for an empty universe."""
    if not strikes:
        return None
    index = bisect.bisect_left(strikes, price)
    exact = index < len(strikes) and strikes[index] == price
    if not exact and index == len(strikes):
        return None  # no listed strike above the price
    low, high = index + min_strike, index + max_strike
    if not exact:
        if min_strike < 0 < max_strike:
            high -= 1
        elif min_strike > 0:
            low, high = low - 1, high - 1
    if low >= len(strikes) or high < 0:
        return None
    return strikes[max(0, low)], strikes[min(len(strikes) - 1, high)]


_SYMBOLS: Dict[Tuple[Symbol, date, float, Right], Symbol] = {}  # Symbols are immutable: build each once


def contract_symbol(canonical: Symbol, expiry: date, strike: float, right: Right, style: OptionStyle) -> Symbol:
    """The Symbol of a listed contract of the canonical option (built once)."""
    key = (canonical, expiry, strike, right)
    symbol = _SYMBOLS.get(key)
    if symbol is None:
        assert canonical.underlying is not None
        lean_right = OptionRight.PUT if right == Right.PUT else OptionRight.CALL
        moment = datetime(expiry.year, expiry.month, expiry.day)
        symbol = Symbol.create_option(
            canonical.underlying, canonical.id.symbol, "usa", style, lean_right, strike, moment
        )
        _SYMBOLS[key] = symbol
    return symbol


class OptionFilterUniverse:
    def __init__(self, data: Iterable[OptionUniverse], underlying: Optional[UnderlyingData], local_time: datetime):
        self.data: List[OptionUniverse] = list(data)
        self.underlying = underlying
        self.local_time = local_time

    @property
    def count(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[OptionUniverse]:
        return iter(self.data)

    def strikes(self, min_strike: int, max_strike: int) -> OptionFilterUniverse:
        if self.underlying is None:
            return self
        unique = sorted({item.id.strike_price for item in self.data})
        window = strike_window(unique, self.underlying.price, min_strike, max_strike)
        if window is None:
            self.data = []
        else:
            self.data = [item for item in self.data if window[0] <= item.id.strike_price <= window[1]]
        return self

    def _reference_date(self) -> date:
        day = self.local_time.date()
        return day if is_trading_day(day) else next_trading_day(day)

    def expiration(self, min_expiry: timedelta | int, max_expiry: timedelta | int) -> OptionFilterUniverse:
        low = min_expiry if isinstance(min_expiry, timedelta) else timedelta(days=min_expiry)
        high = max_expiry if isinstance(max_expiry, timedelta) else timedelta(days=max_expiry)
        reference = datetime.combine(self._reference_date(), datetime.min.time())
        first, last = (reference + low).date(), (reference + high).date()
        self.data = [item for item in self.data if first <= item.id.date.date() <= last]
        return self

    def contracts(self, contracts: Any) -> OptionFilterUniverse:
        if callable(contracts):
            chosen = list(contracts(list(self.data)))
        else:
            chosen = list(contracts)
        by_symbol = {item.symbol: item for item in self.data}
        symbols = [_as_symbol(item) for item in chosen]
        self.data = [by_symbol.get(symbol) or OptionUniverse(symbol) for symbol in symbols]
        return self

    def calls_only(self) -> OptionFilterUniverse:
        return self.contracts(lambda items: [item.symbol for item in items if item.id.option_right == OptionRight.CALL])

    def puts_only(self) -> OptionFilterUniverse:
        return self.contracts(lambda items: [item.symbol for item in items if item.id.option_right == OptionRight.PUT])

    def where_contains(self, symbols: Iterable[Symbol]) -> OptionFilterUniverse:
        """OptionFilterUniverseEx.WhereContains: the contracts whose Symbol is in the list."""
        wanted = set(symbols)
        self.data = [item for item in self.data if item.symbol in wanted]
        return self


def _as_symbol(item: object) -> Symbol:
    """The selector's items must be Symbols; a data item converts through OptionUniverse's implicit operator
    Symbol (Algorithm.Python/OptionUniverseFilterOptionsDataRegressionAlgorithm.py returns data items)."""
    if isinstance(item, Symbol):
        return item
    if isinstance(item, OptionUniverse):
        return item.symbol
    raise ValueError(f"contract selector returned {type(item).__name__}, not a Symbol")


def apply_filter_function(
    function: Callable[[OptionFilterUniverse], Any], universe: OptionFilterUniverse
) -> List[Symbol]:
    """Option.SetFilter(PyObject): the selected Symbols after the result conversion and ApplyTypesFilter."""
    result = function(universe)
    if result is None:
        chosen = universe
    elif isinstance(result, OptionFilterUniverse):
        chosen = result
    elif isinstance(result, list | tuple):
        chosen = universe.where_contains(_as_symbol(item) for item in result)
    else:
        raise ValueError(
            f"QCAlgorithm.SetFilter: result type {type(result).__name__} from filter function is not a valid "
            "argument, please return either a OptionFilterUniverse or a list of symbols"
        )
    return [item.symbol for item in chosen]  # ApplyTypesFilter: Standard | Weekly by default keeps them all


class FilterFunction:
    """`option.set_filter(function)`: the function and its daily selections."""

    def __init__(self, function: Callable[[OptionFilterUniverse], Any]) -> None:
        self.function = function
        self._selections: Dict[Tuple[date, str], Tuple[Tuple[Symbol, ...], FrozenSet[Symbol]]] = {}

    def selection(
        self, market: SyntheticMarket, index: int, canonical: Symbol, style: OptionStyle
    ) -> Tuple[Tuple[Symbol, ...], FrozenSet[Symbol]]:
        """The Symbols selected for the step's trading day: in chain order (expiry, strike, put before call)
        and as a set."""
        day = market.steps[index].time.date()
        key = (day, canonical.id.symbol)
        selected = self._selections.get(key)
        if selected is None:
            for old in [k for k in self._selections if k[0] < day]:
                del self._selections[old]
            symbols = apply_filter_function(self.function, listed_universe(market, index, canonical, style))
            ordered = tuple(sorted(set(symbols), key=_chain_order))
            selected = self._selections[key] = (ordered, frozenset(ordered))
        return selected


def _chain_order(symbol: Symbol) -> Tuple[datetime, float, int]:
    return symbol.id.date, symbol.id.strike_price, 0 if symbol.id.option_right == OptionRight.PUT else 1


def _selection_price(market: SyntheticMarket, index: int, underlying: str) -> float:
    """The last level before the step's day (the previous session's close); the day's first on a run's first day."""
    day = market.steps[index].time.date()
    first = index
    while first > 0 and market.steps[first - 1].time.date() == day:
        first -= 1
    return market.level(first - 1 if first > 0 else first, underlying)


def listed_universe(market: SyntheticMarket, index: int, canonical: Symbol, style: OptionStyle) -> OptionFilterUniverse:
    """The universe data of the step's trading day: every contract listed that day (the harness's strikes
    around the selection price, its expiries), the underlying at that price, selected at the midnight that
    ends the previous trading day."""
    assert canonical.underlying is not None
    day = market.steps[index].time.date()
    price = _selection_price(market, index, canonical.underlying.value)
    strikes = market.strikes(price, canonical.underlying.value)
    data = [
        OptionUniverse(contract_symbol(canonical, expiry, strike, right, style))
        for expiry in option_expiries(day)
        for strike in strikes
        for right in (Right.PUT, Right.CALL)
    ]
    local_time = datetime.combine(
        trading_day_at_or_before(day - timedelta(days=1)) + timedelta(days=1), datetime.min.time()
    )
    return OptionFilterUniverse(data, UnderlyingData(canonical.underlying, price), local_time)
