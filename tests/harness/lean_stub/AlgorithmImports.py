"""Offline stand-in for LEAN's `AlgorithmImports` (only on sys.path when the harness puts it there).

Like LEAN's Common/AlgorithmImports.py it re-exports `date, time, datetime, timedelta`,
`typing.*`, `math` and `json`, then the LEAN names main.py uses. Python's own Exception is kept.
"""

import json
import math
from datetime import date, datetime, time, timedelta
from typing import *

from tests.harness.lean_stub.algorithm import QCAlgorithm
from tests.harness.lean_stub.charting import Chart, Series, SeriesType
from tests.harness.lean_stub.enums import (
    AlgorithmMode,
    DeploymentTarget,
    Market,
    OptionRight,
    OptionStyle,
    OrderDirection,
    OrderStatus,
    OrderType,
    Resolution,
    SecurityType,
)
from tests.harness.lean_stub.market_data import Greeks, OptionChain, OptionContract, Slice, TradeBar
from tests.harness.lean_stub.option_universe import OptionFilterUniverse
from tests.harness.lean_stub.orders import Leg, Order, OrderEvent, OrderTicket
from tests.harness.lean_stub.securities import Securities, Security, SecurityHolding, SecurityPortfolioManager
from tests.harness.lean_stub.symbols import SecurityIdentifier, Symbol
