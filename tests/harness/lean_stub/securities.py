"""Security, Securities, SecurityHolding and the Portfolio (BrokerageSetupHandler: holdings load after initialize).

Prices come from a `PriceSource` (the harness's view of the synthetic market at the algorithm's current step).
Follows LEAN: `portfolio.values()` yields a holding for every added security (invested or not);
`total_portfolio_value` = cash + sum(quantity x price x multiplier), options multiplier 100; holdings of a
symbol not yet added are auto-subscribed (BrokerageSetupHandler.LoadExistingHoldingsAndOrders).
`total_margin_used` is an approximation of LEAN's option margin model (documented on the property).
Differs from LEAN: one currency (USD) only, no fees, no buying-power checks (orders are never refused for
margin); options are marked at the mid (LEAN marks at the last price).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Dict, Iterator, List, Optional, Protocol, Tuple

from core.params import Params
from tests.harness.lean_stub.enums import OptionRight, SecurityType
from tests.harness.lean_stub.market_data import OptionFilter
from tests.harness.lean_stub.option_universe import FilterFunction
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market_calendar import is_trading_day, next_market_close, next_trading_day


def multiplier_of(symbol: Symbol) -> int:
    return 100 if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION) else 1


class PriceSource(Protocol):
    def prices(self, symbol: Symbol) -> Tuple[float, float, float, float]:
        """(price, open, bid, ask) now; zeros when there is no data."""
        ...

    def has_data(self, security: Security) -> bool:
        """Security.HasData: the security has received data (or was seeded) by now."""
        ...

    def exchange_open(self) -> bool: ...


class ExchangeHours:
    """`security.exchange.hours` (LEAN's SecurityExchangeHours): GetNextMarketClose, IsDateOpen and
    GetNextTradingDay, regular hours only, from the harness calendar (tests/harness/market_calendar.py, early
    closes included)."""

    def is_date_open(self, local_date_time: datetime | date, extended_market_hours: bool = False) -> bool:
        """IsDateOpen: the date has market hours (every equity/index trading day has regular hours)."""
        day = local_date_time.date() if isinstance(local_date_time, datetime) else local_date_time
        return is_trading_day(day)

    def get_next_trading_day(self, day: datetime | date) -> datetime:
        """GetNextTradingDay: `date.AddDays(1)` until IsDateOpen (a datetime keeps its time of day)."""
        moment = day if isinstance(day, datetime) else datetime(day.year, day.month, day.day)
        following = next_trading_day(moment.date())
        return datetime.combine(following, moment.time())

    def get_next_market_close(self, local_date_time: datetime, extended_market_hours: bool) -> datetime:
        if extended_market_hours:
            raise NotImplementedError("the harness models regular hours only")
        return next_market_close(local_date_time)


class Exchange:
    def __init__(self, source: PriceSource) -> None:
        self._source = source
        self.hours = ExchangeHours()

    @property
    def exchange_open(self) -> bool:
        return self._source.exchange_open()


class SecurityHolding:
    def __init__(self, security: Security) -> None:
        self._security = security
        self.quantity = 0.0
        self.average_price = 0.0

    @property
    def symbol(self) -> Symbol:
        return self._security.symbol

    @property
    def invested(self) -> bool:
        return self.quantity != 0

    @property
    def is_long(self) -> bool:
        return self.quantity > 0

    @property
    def is_short(self) -> bool:
        return self.quantity < 0

    @property
    def holdings_value(self) -> float:
        return self.quantity * self._security.price * multiplier_of(self.symbol)

    def set_holdings(self, average_price: float, quantity: float) -> None:
        self.average_price = float(average_price)
        self.quantity = float(quantity)

    def add_fill(self, quantity: float, price: float) -> None:
        new_quantity = self.quantity + quantity
        if new_quantity == 0:
            self.average_price = 0.0
        elif self.quantity == 0 or (self.quantity > 0) != (quantity > 0):
            if (self.quantity > 0) != (new_quantity > 0) or self.quantity == 0:
                self.average_price = price  # opened or flipped
        else:
            self.average_price = (self.average_price * self.quantity + price * quantity) / new_quantity
        self.quantity = new_quantity


class Security:
    """Prices are 0 until the security has data (Common/Securities/Security.cs `HasData` = GetLastData() != null):
    from step `data_from` on (its first slice), or at once when `seeded` (last known price) or
    `seeded_price_only` (BrokerageSetupHandler seeds a held security with a TradeBar at the holding's market
    price: a price, no bid or ask until its first quote)."""

    def __init__(self, symbol: Symbol, source: PriceSource) -> None:
        self.symbol = symbol
        self._source = source
        self.exchange = Exchange(source)
        self.holdings = SecurityHolding(self)
        self.option_filter: object = None
        self.data_from: Optional[int] = 0
        self.seeded = False
        self.seeded_price_only = False

    def _quote(self) -> Tuple[float, float, float, float]:
        if not self._source.has_data(self):
            if self.seeded_price_only:
                price = self._source.prices(self.symbol)[0]
                return price, price, 0.0, 0.0
            return 0.0, 0.0, 0.0, 0.0
        return self._source.prices(self.symbol)

    @property
    def price(self) -> float:
        return self._quote()[0]

    @property
    def close(self) -> float:
        """Security.Close: the last close (the price, in the harness)."""
        return self._source.prices(self.symbol)[0]

    @property
    def open(self) -> float:
        return self._quote()[1]

    @property
    def bid_price(self) -> float:
        return self._quote()[2]

    @property
    def ask_price(self) -> float:
        return self._quote()[3]

    @property
    def has_data(self) -> bool:
        return self.seeded_price_only or self._source.has_data(self)

    @property
    def type(self) -> SecurityType:
        return self.symbol.security_type

    def set_filter(self, *args: object) -> None:
        """Option.set_filter(min_strike, max_strike[, min_expiry, max_expiry]) (counts of strikes, timedeltas), or
        set_filter(function) (Option.SetFilter(PyObject): option_universe.FilterFunction)."""
        values = list(args)
        if len(values) == 1 and callable(values[0]):
            self.option_filter = FilterFunction(values[0])
        elif len(values) == 2:
            self.option_filter = OptionFilter(int(values[0]), int(values[1]))  # type: ignore[call-overload]
        else:
            self.option_filter = OptionFilter(*values)  # type: ignore[arg-type]


class Securities:
    """`algorithm.securities`: Symbol (or ticker) -> Security."""

    def __init__(self) -> None:
        self._by_symbol: Dict[Symbol, Security] = {}

    def _resolve(self, key: Symbol | str) -> Symbol:
        if isinstance(key, Symbol):
            return key
        for symbol in self._by_symbol:
            if symbol.value == key:
                return symbol
        raise KeyError(key)

    def __getitem__(self, key: Symbol | str) -> Security:
        symbol = self._resolve(key)
        if symbol not in self._by_symbol:
            raise KeyError(f"This asset symbol ({symbol}) was not found in your security list")
        return self._by_symbol[symbol]

    def contains_key(self, key: Symbol | str) -> bool:
        try:
            return self._resolve(key) in self._by_symbol
        except KeyError:
            return False

    __contains__ = contains_key

    def add(self, security: Security) -> Security:
        return self._by_symbol.setdefault(security.symbol, security)

    def remove(self, symbol: Symbol) -> None:
        self._by_symbol.pop(symbol, None)

    def values(self) -> List[Security]:
        return list(self._by_symbol.values())

    def keys(self) -> List[Symbol]:
        return list(self._by_symbol)

    def __iter__(self) -> Iterator[Symbol]:
        return iter(list(self._by_symbol))

    def __len__(self) -> int:
        return len(self._by_symbol)


class SecurityPortfolioManager:
    """`algorithm.portfolio`: holdings by Symbol plus the USD cash book."""

    def __init__(self, securities: Securities) -> None:
        self._securities = securities
        self.cash = 0.0

    def __getitem__(self, key: Symbol | str) -> SecurityHolding:
        return self._securities[key].holdings

    def values(self) -> List[SecurityHolding]:
        return [security.holdings for security in self._securities.values()]

    def keys(self) -> List[Symbol]:
        return self._securities.keys()

    def contains_key(self, key: Symbol | str) -> bool:
        return self._securities.contains_key(key)

    @property
    def invested(self) -> bool:
        return any(holding.invested for holding in self.values())

    @property
    def total_holdings_value(self) -> float:
        return sum(holding.holdings_value for holding in self.values() if holding.invested)

    @property
    def total_portfolio_value(self) -> float:
        return self.cash + self.total_holdings_value

    @property
    def total_margin_used(self) -> float:
        """Approximation of LEAN's margin in use: every SHORT option at the Reg-T-style naked rate the
        strategies' params size with (naked_margin_fraction_equity of the underlying price minus the
        out-of-the-money amount, at least naked_margin_floor of the strike), x100 per contract; long
        options 0 (paid in full); nothing else is held by the template. Differs from LEAN: LEAN's option
        strategy margin lets a long of the same structure cover a short (a spread needs only its width), so for
        spreads this figure is higher than LEAN's."""
        params = Params()
        total = 0.0
        for holding in self.values():
            symbol = holding.symbol
            if holding.quantity >= 0 or symbol.security_type not in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
                continue
            strike = symbol.id.strike_price
            underlying = symbol.underlying
            spot = self._securities[underlying].price if underlying and self._securities.contains_key(underlying) else 0
            spot = spot if spot > 0 else strike
            if symbol.id.option_right == OptionRight.PUT:
                out_of_money = max(0.0, spot - strike)
            else:
                out_of_money = max(0.0, strike - spot)
            per_contract = max(
                params.naked_margin_fraction_equity * spot - out_of_money, params.naked_margin_floor * strike
            )
            total += -holding.quantity * per_contract * multiplier_of(symbol)
        return total

    def set_cash(self, amount: float) -> None:
        self.cash = float(amount)

    def holding(self, symbol: Symbol) -> Optional[SecurityHolding]:
        return self._securities[symbol].holdings if self._securities.contains_key(symbol) else None
