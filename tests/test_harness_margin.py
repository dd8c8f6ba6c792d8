"""The harness portfolio's `total_margin_used` (an approximation of LEAN's margin in use, see securities.py) and
main.py's LeanMarketView passing it to the engine as `margin_used`."""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Any, List, Tuple

import pytest

from core.params import Params
from tests.harness.lean_stub.algorithm import QCAlgorithm
from tests.harness.lean_stub.enums import OptionRight, OptionStyle, Resolution
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.simulation import Deployment

FRIDAY = date(2024, 1, 5)
MARKET = SyntheticMarket(7, FRIDAY, date(2024, 1, 8))


class ShortPutAndLongCall(QCAlgorithm):
    """At 10:00 sells 3 puts 10 below spot and buys 2 calls; records (spot, margin) on every later bar."""

    def initialize(self) -> None:
        self.settings.seed_initial_prices = True  # contracts added right before ordering need a price (LEAN too)
        self.spy = self.add_equity("SPY", Resolution.MINUTE).symbol
        self.put: Any = None
        self.seen: List[Tuple[float, float]] = []

    def contract(self, right: OptionRight, strike: float) -> Symbol:
        expiry = datetime.combine(date(2024, 1, 19), datetime.min.time())
        symbol = Symbol.create_option(self.spy, "usa", OptionStyle.AMERICAN, right, strike, expiry)
        self.add_option_contract(symbol)
        return symbol

    def on_data(self, data: Any) -> None:
        if self.put is None and self.time.hour == 10:
            spot = round(self.securities[self.spy].price)
            self.put = self.contract(OptionRight.PUT, float(spot - 10))
            self.market_order(self.put, -3)
            self.market_order(self.contract(OptionRight.CALL, float(spot + 5)), 2)
        elif self.put is not None:
            self.seen.append((self.securities[self.spy].price, self.portfolio.total_margin_used))


def test_short_options_are_charged_at_the_naked_rate_and_long_options_nothing() -> None:
    deployment = Deployment(
        seed=7, start=FRIDAY, end=FRIDAY, algorithm_class=ShortPutAndLongCall, market=MARKET, live_mode=False
    ).run()
    algorithm = deployment.algorithm
    assert algorithm.seen, "the orders should fill on Friday"
    params = Params()
    strike = algorithm.put.id.strike_price
    for spot, margin in algorithm.seen:
        out_of_money = max(0.0, spot - strike)
        each = max(params.naked_margin_fraction_equity * spot - out_of_money, params.naked_margin_floor * strike)
        assert margin == pytest.approx(3 * each * 100)
    assert algorithm.portfolio.total_margin_used > 0


def test_main_passes_the_portfolio_margin_to_the_engine() -> None:
    # LT112 enters on the first Wednesday (Jan 3) and still holds its naked puts on Thursday: margin is in use
    deployment = Deployment(seed=1, start=date(2024, 1, 2), end=date(2024, 1, 4)).run()
    algorithm = deployment.algorithm
    view = sys.modules[type(algorithm).__module__].LeanMarketView(algorithm, None)
    assert deployment.engine.snapshot().open_positions(), "LT112 should hold a position at the end"
    assert view.margin_used == algorithm.portfolio.total_margin_used > 0
