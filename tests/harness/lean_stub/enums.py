"""LEAN enums with the UPPER_CASE Python names the stubs list (Common/Orders/OrderTypes.cs, Common/Global.cs)."""

from __future__ import annotations

from enum import IntEnum


class OrderStatus(IntEnum):
    # LEAN's values (Common/Orders/OrderTypes.cs); there is no 4
    NEW = 0
    SUBMITTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 5
    NONE = 6
    INVALID = 7
    CANCEL_PENDING = 8
    UPDATE_SUBMITTED = 9

    @property
    def is_closed(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID)


class OrderType(IntEnum):
    MARKET = 0
    LIMIT = 1
    MARKET_ON_OPEN = 4
    OPTION_EXERCISE = 6
    COMBO_MARKET = 9
    COMBO_LIMIT = 10
    COMBO_LEG_LIMIT = 11


class OrderDirection(IntEnum):
    BUY = 0
    SELL = 1
    HOLD = 2


class OptionRight(IntEnum):
    CALL = 0
    PUT = 1


class OptionStyle(IntEnum):
    AMERICAN = 0
    EUROPEAN = 1


class SecurityType(IntEnum):
    BASE = 0
    EQUITY = 1
    OPTION = 2
    INDEX = 10
    INDEX_OPTION = 11


class Resolution(IntEnum):
    TICK = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAILY = 4


class DeploymentTarget(IntEnum):
    CLOUD_PLATFORM = 0
    LOCAL_PLATFORM = 1


class AlgorithmMode(IntEnum):
    LIVE = 0
    OPTIMIZATION = 1
    BACKTESTING = 2
    RESEARCH = 3


class Market:
    """LEAN's Market is a class of string constants; only USA is used."""

    USA = "usa"
