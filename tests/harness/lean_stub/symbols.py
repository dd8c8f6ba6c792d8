"""Symbol and SecurityIdentifier: value objects, equal by identifier (Common/Symbol.cs, Common/SecurityIdentifier.cs).

Differs from LEAN: the identifier is a plain tuple, not LEAN's encoded SID string; `value` of an option is the
OSI ticker LEAN uses (e.g. "SPY   240119P00402500"), of a canonical option "?SPY".
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from tests.harness.lean_stub.enums import Market, OptionRight, OptionStyle, SecurityType

_NO_DATE = datetime(1998, 1, 2)  # LEAN's SecurityIdentifier.DefaultDate


class SecurityIdentifier:
    __slots__ = ("date", "market", "option_right", "option_style", "security_type", "strike_price", "symbol")

    def __init__(  # noqa: PLR0917 (LEAN's field order)
        self,
        symbol: str,
        security_type: SecurityType,
        market: str = Market.USA,
        date: datetime = _NO_DATE,
        strike_price: float = 0.0,
        option_right: OptionRight = OptionRight.CALL,
        option_style: OptionStyle = OptionStyle.AMERICAN,
    ) -> None:
        self.symbol = symbol
        self.security_type = security_type
        self.market = market
        self.date = date
        self.strike_price = float(strike_price)
        self.option_right = option_right
        self.option_style = option_style

    def _key(self) -> tuple[object, ...]:
        return (self.symbol, self.security_type, self.market, self.date, self.strike_price, self.option_right)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecurityIdentifier) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return "|".join(str(part) for part in self._key())


def _osi(target: str, expiry: datetime, right: OptionRight, strike: float) -> str:
    letter = "P" if right == OptionRight.PUT else "C"
    return f"{target:<6}{expiry:%y%m%d}{letter}{round(strike * 1000):08d}"


class Symbol:
    __slots__ = ("_hash", "id", "underlying", "value")

    def __init__(self, sid: SecurityIdentifier, value: str, underlying: Optional[Symbol] = None) -> None:
        self.id = sid
        self.value = value
        self.underlying = underlying
        self._hash = hash(sid)

    @property
    def security_type(self) -> SecurityType:
        return self.id.security_type

    @property
    def is_canonical(self) -> bool:
        return self.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION) and self.id.date == _NO_DATE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Symbol) and self.id == other.id

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Symbol({self.value!r})"

    # -- factories (LEAN's overloads: Symbol.create(ticker, type, market); create_option with or without a
    #    target option name between the underlying and the market) --

    @staticmethod
    def create(ticker: str, security_type: SecurityType, market: str = Market.USA) -> Symbol:
        return Symbol(SecurityIdentifier(ticker, security_type, str(market)), ticker)

    @staticmethod
    def create_option(underlying: Symbol | str, *args: object) -> Symbol:
        if not isinstance(args[1], OptionStyle):  # (underlying, target_option, market, style, ...)
            target, rest = str(args[0]), args[1:]
        else:
            target, rest = None, args
        market, style, right, strike, expiry = rest[:5]
        if isinstance(underlying, str):
            underlying = Symbol.create(underlying, SecurityType.EQUITY)
        assert isinstance(style, OptionStyle) and isinstance(right, OptionRight)
        assert isinstance(strike, int | float) and isinstance(expiry, datetime)
        target_name = target or underlying.value
        option_type = (
            SecurityType.INDEX_OPTION if underlying.security_type == SecurityType.INDEX else SecurityType.OPTION
        )
        expiry_day = datetime(expiry.year, expiry.month, expiry.day)
        sid = SecurityIdentifier(target_name, option_type, str(market), expiry_day, float(strike), right, style)
        return Symbol(sid, _osi(target_name, expiry_day, right, float(strike)), underlying)

    @staticmethod
    def create_canonical_option(underlying: Symbol, target: Optional[str] = None) -> Symbol:
        name = target or underlying.value
        option_type = (
            SecurityType.INDEX_OPTION if underlying.security_type == SecurityType.INDEX else SecurityType.OPTION
        )
        return Symbol(SecurityIdentifier(name, option_type), f"?{name}", underlying)

    @property
    def canonical(self) -> Symbol:
        assert self.underlying is not None
        return Symbol.create_canonical_option(self.underlying, self.id.symbol)
