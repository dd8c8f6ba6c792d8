"""Black-Scholes sanity for the synthetic chain: parity, delta ranges, expiry behaviour, quotes."""

import math
from datetime import date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import Right
from tests.harness.black_scholes import bs_delta, bs_price, bs_values, option_quotes, years_to_expiry

spots = st.floats(min_value=50.0, max_value=1000.0)
moneyness = st.floats(min_value=0.6, max_value=1.4)
years = st.floats(min_value=1.0 / 365 / 24, max_value=2.0)
vols = st.floats(min_value=0.05, max_value=1.0)
rates = st.floats(min_value=0.0, max_value=0.08)


@settings(max_examples=80, derandomize=True)
@given(spots, moneyness, years, vols, rates)
def test_put_call_parity(spot: float, m: float, t: float, vol: float, rate: float) -> None:
    strike = spot * m
    call = bs_price(spot, strike, t, vol, rate, Right.CALL)
    put = bs_price(spot, strike, t, vol, rate, Right.PUT)
    assert math.isclose(call - put, spot - strike * math.exp(-rate * t), rel_tol=1e-9, abs_tol=1e-8)


@settings(max_examples=80, derandomize=True)
@given(spots, moneyness, years, vols, rates)
def test_delta_ranges_and_call_minus_put_is_one(spot: float, m: float, t: float, vol: float, rate: float) -> None:
    strike = spot * m
    call = bs_delta(spot, strike, t, vol, rate, Right.CALL)
    put = bs_delta(spot, strike, t, vol, rate, Right.PUT)
    assert 0.0 <= call <= 1.0
    assert -1.0 <= put <= 0.0
    assert math.isclose(call - put, 1.0, abs_tol=1e-12)


def test_prices_are_bounded_and_increase_with_vol() -> None:
    low = bs_price(100.0, 95.0, 0.25, 0.1, 0.03, Right.PUT)
    high = bs_price(100.0, 95.0, 0.25, 0.4, 0.03, Right.PUT)
    assert 0.0 < low < high < 95.0


def test_expired_option_is_worth_intrinsic() -> None:
    assert bs_price(100.0, 90.0, 0.0, 0.2, 0.03, Right.CALL) == 10.0
    assert bs_price(100.0, 90.0, 0.0, 0.2, 0.03, Right.PUT) == 0.0
    assert bs_delta(80.0, 90.0, 0.0, 0.2, 0.03, Right.PUT) == -1.0


def test_years_to_expiry_counts_to_the_16_00_close() -> None:
    assert years_to_expiry(datetime(2024, 1, 5, 15, 0), date(2024, 1, 5)) * 365 * 24 == 1.0
    assert years_to_expiry(datetime(2024, 1, 5, 16, 1), date(2024, 1, 5)) == 0.0


def test_option_quotes_have_spread_keys_and_skip_expired() -> None:
    now = datetime(2024, 1, 5, 10, 0)
    quotes = option_quotes("SPY", 470.0, now, [date(2024, 1, 4), date(2024, 1, 5)], [465.0, 470.5], 0.15)
    assert len(quotes) == 4  # yesterday's expiry is gone; 2 strikes x put/call for today
    keys = {quote.symbol for quote in quotes}
    assert "SPY-20240105-P-470.5" in keys and "SPY-20240105-C-465" in keys
    for quote in quotes:
        assert 0.0 <= quote.bid < quote.ask
        assert quote.delta is not None
        assert (quote.delta < 0) == (quote.right == Right.PUT)


@settings(max_examples=40, derandomize=True)
@given(spots, moneyness, years, vols, rates)
def test_one_pass_values_match_the_separate_functions(spot: float, m: float, t: float, vol: float, rate: float) -> None:
    strike = spot * m
    for right in (Right.PUT, Right.CALL):
        price, delta, gamma = bs_values(spot, strike, t, vol, rate, right)
        assert math.isclose(price, bs_price(spot, strike, t, vol, rate, right), rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(delta, bs_delta(spot, strike, t, vol, rate, right), abs_tol=1e-12)
        assert gamma >= 0.0
