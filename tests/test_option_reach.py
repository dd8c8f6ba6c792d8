"""The option subscription is the union of each strategy's own reach (strategies.base.OptionReach/UniverseReach):
rights, expiry range and strikes per strategy, not one rectangle around all of them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.params import Params
from core.ports import ListLog
from core.records import Right
from core.selection import STRIKE_STEP, strike_for_delta
from engine.safe_call import StrategyCalls
from strategies.base import BOTH_RIGHTS, OptionReach, UniverseReach, universe_price, universe_reach
from strategies.lt112 import LT112, LT112Config
from strategies.put_credit_spread import PutCreditSpread, PutCreditSpreadConfig
from strategies.zero_dte import ZeroDte, ZeroDteConfig
from tests.harness.lean_stub.enums import OptionStyle
from tests.harness.lean_stub.option_universe import (
    OptionFilterUniverse,
    OptionUniverse,
    UnderlyingData,
    contract_symbol,
)
from tests.harness.market import SyntheticMarket
from tests.harness.market_calendar import option_expiries
from tests.harness.simulation import Deployment

TODAY = date(2024, 1, 5)  # a Friday: the 0DTE weekday
SPX = 4700.0


def _default_spx_reach() -> UniverseReach:
    market = Params(underlying="SPX")
    strategies = (LT112(LT112Config(), market), ZeroDte(ZeroDteConfig(), market))
    return UniverseReach.of([strategy.option_reach(SPX) for strategy in strategies], "SPX")


def _keeps(reach: UniverseReach, right: Right, days: int, strike: float) -> bool:
    return reach.keeps(right, TODAY + timedelta(days=days), strike, TODAY, SPX)


def test_the_union_leaves_out_what_no_strategy_can_choose() -> None:
    reach = _default_spx_reach()
    assert not _keeps(reach, Right.CALL, 60, SPX), "no strategy trades a 60-DTE call"
    assert not _keeps(reach, Right.CALL, 120, SPX + 100), "LT112 sells puts only"
    assert not _keeps(reach, Right.PUT, 60, SPX - 200), "60 DTE is outside LT112's 120 +- 20 window"
    assert not _keeps(reach, Right.PUT, 0, SPX * 0.8), "the 0DTE wings end a few % from spot"


def test_the_union_keeps_todays_0dte_strikes_and_lt112s_5_delta_put_at_120_dte() -> None:
    reach = _default_spx_reach()
    wing = ZeroDte(ZeroDteConfig(), Params(underlying="SPX")).width
    for right in (Right.PUT, Right.CALL):
        for strike in (SPX - 0.03 * SPX - wing, SPX, SPX + 0.03 * SPX + wing):
            assert _keeps(reach, right, 0, strike)
    skewed_five_delta = strike_for_delta(SPX, 0.05, Right.PUT, 0.28, 120 / 365)
    for days in (100, 120, 140):
        assert _keeps(reach, Right.PUT, days, skewed_five_delta)
        assert _keeps(reach, Right.PUT, days, SPX)  # the long put near the money
    # coarse bounds for LEAN's own Strikes/Expiration cover both strategies
    assert reach.min_days == 0 and reach.max_days >= 140
    assert reach.strikes_below * STRIKE_STEP["SPX"] >= SPX - skewed_five_delta
    assert reach.strikes_above * STRIKE_STEP["SPX"] >= 0.03 * SPX


def test_each_strategy_names_its_rights_and_dte_window() -> None:
    market = Params(underlying="SPX")
    lt112 = LT112(LT112Config(), market).option_reach(SPX)
    assert lt112.rights == frozenset((Right.PUT,))
    assert (lt112.min_days, lt112.max_days) == (100, 150)
    spread = PutCreditSpread(PutCreditSpreadConfig(), market).option_reach(SPX)
    assert spread.rights == frozenset((Right.PUT,)) and (spread.min_days, spread.max_days) == (30, 65)
    zero = ZeroDte(ZeroDteConfig(), market).option_reach(SPX)
    assert zero.rights == BOTH_RIGHTS and (zero.min_days, zero.max_days) == (0, 0)


def test_a_reach_with_only_the_old_three_fields_is_as_wide_as_before() -> None:
    """A forked strategy written before min_days/rights existed: both rights, every expiry from today."""
    old = OptionReach(points_below=100.0, points_above=50.0, max_days=30)
    reach = UniverseReach.of([old], "SPY")
    for right in (Right.PUT, Right.CALL):
        for days in (0, 15, 30):
            assert _keeps(reach, right, days, SPX - 100.0) and _keeps(reach, right, days, SPX + 50.0)
    assert not _keeps(reach, Right.PUT, 31, SPX)
    assert (reach.strikes_below, reach.strikes_above, reach.min_days, reach.max_days) == (101, 51, 0, 30)


def test_no_enabled_strategy_subscribes_the_money_today_only() -> None:
    reach = UniverseReach.of([], "SPX")
    assert (reach.strikes_below, reach.strikes_above, reach.min_days, reach.max_days) == (1, 1, 0, 0)
    assert _keeps(reach, Right.CALL, 0, SPX + 5.0) and not _keeps(reach, Right.CALL, 0, SPX + 10.0)


def test_without_an_underlying_price_strikes_are_not_judged() -> None:
    """OptionFilterUniverse.Strikes leaves the universe whole when it has no underlying data; so does keeps."""
    reach = _default_spx_reach()
    assert reach.keeps(Right.PUT, TODAY + timedelta(days=120), 10.0, TODAY, None)
    assert not reach.keeps(Right.CALL, TODAY + timedelta(days=120), 10.0, TODAY, None)


_REACHES = st.builds(
    OptionReach,
    points_below=st.floats(0, 2000),
    points_above=st.floats(0, 2000),
    max_days=st.integers(0, 200),
    min_days=st.integers(0, 200),
    rights=st.sampled_from([frozenset((Right.PUT,)), frozenset((Right.CALL,)), BOTH_RIGHTS]),
)


@given(
    reaches=st.lists(_REACHES, min_size=1, max_size=4),
    right=st.sampled_from([Right.PUT, Right.CALL]),
    days=st.integers(-5, 250),
    distance=st.floats(-3000, 3000),
)
def test_keeps_is_the_union_of_the_reaches_and_inside_the_coarse_bounds(
    reaches: list[OptionReach], right: Right, days: int, distance: float
) -> None:
    union = UniverseReach.of(reaches, "SPX")
    step = STRIKE_STEP["SPX"]
    kept = union.keeps(right, TODAY + timedelta(days=days), SPX + distance, TODAY, SPX)
    assert kept == any(reach.holds(right, days, distance, step) for reach in reaches)
    if kept:
        assert union.min_days <= days <= union.max_days
        # Strikes keeps `count` listed strikes beyond the one nearest the price: one step wider than the points
        assert -(union.strikes_below + 1) * step <= distance <= (union.strikes_above + 1) * step


def test_keeper_takes_leans_expiry_datetime_and_a_decimal_like_strike() -> None:
    """LEAN hands SecurityIdentifier.Date (a datetime at midnight) and StrikePrice (a decimal)."""
    keep = _default_spx_reach().keeper(TODAY, SPX)
    assert keep(Right.PUT, datetime(2024, 1, 5), Decimal("4700"))
    assert not keep(Right.CALL, datetime(2024, 3, 5), Decimal("4700"))


def test_main_counts_expiry_days_from_the_next_trading_day_when_selected_on_a_weekend() -> None:
    """Monday's selection runs at Saturday 00:00 (OptionFilterUniverse.AdjustExpirationReferenceDate): main.py's
    filter must count Monday's expiry as 0 days, as LEAN's Expiration does, or the 0DTE strikes are lost."""
    deployment = Deployment(
        seed=11, start=date(2024, 1, 3), end=date(2024, 1, 3), parameters={"underlying": "SPX"}
    ).run()
    algorithm = deployment.algorithm
    canonical = algorithm.option_symbol
    monday = date(2024, 1, 8)
    data = [
        OptionUniverse(contract_symbol(canonical, expiry, strike, right, OptionStyle.EUROPEAN))
        for expiry in option_expiries(monday)
        for strike in SyntheticMarket.strikes(SPX, "SPX")
        for right in (Right.PUT, Right.CALL)
    ]
    universe = OptionFilterUniverse(data, UnderlyingData(canonical.underlying, SPX), datetime(2024, 1, 6))
    kept = algorithm._option_universe(universe)
    days = {(item.id.date.date() - monday).days for item in kept}
    assert 0 in days, "Monday's 0DTE contracts"
    assert all(day == 0 or day >= LT112Config().dte - LT112Config().dte_window for day in days), sorted(days)


class _BrokenReach(ZeroDte):
    def option_reach(self, spot: float) -> OptionReach:
        raise ZeroDivisionError("a forked strategy's bug")


def test_a_strategy_whose_reach_raises_is_logged_and_left_out_of_the_union() -> None:
    """LEAN runs the filter function inside universe selection, where an exception stops the algorithm: the
    failing strategy subscribes nothing (so it cannot enter) and the others keep their contracts."""
    market = Params(underlying="SPX")
    log = ListLog()
    strategies = (LT112(LT112Config(), market), _BrokenReach(ZeroDteConfig(), market))
    reach = universe_reach(strategies, SPX, "SPX", StrategyCalls(log).call)
    assert len(log.errors) == 1 and "option_reach failed" in log.errors[0] and "ZeroDivisionError" in log.errors[0]
    assert not _keeps(reach, Right.CALL, 0, SPX), "the broken 0DTE's contracts are not subscribed"
    assert _keeps(reach, Right.PUT, 120, SPX - 200), "LT112's still are"


def test_a_selection_without_a_usable_underlying_price_does_not_judge_strikes() -> None:
    for unusable in (None, 0, -5.0, float("nan"), float("inf"), "x"):
        assert universe_price(unusable) is None
    assert universe_price(Decimal("4700.5")) == 4700.5
    reach = _default_spx_reach()
    far_put = SPX * 0.5
    assert reach.keeps(Right.PUT, TODAY + timedelta(days=120), far_put, TODAY, universe_price(0)), "not judged"
    assert not reach.keeps(Right.PUT, TODAY + timedelta(days=120), far_put, TODAY, universe_price(SPX))
