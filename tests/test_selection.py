from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ports import OptionQuote
from core.records import Right
from core.selection import (
    NoPick,
    by_delta,
    by_delta_or_fraction,
    by_spot_fraction,
    expiry_nearest,
    net_price,
    points_away,
    side,
    strictly_descending,
    structure_problem,
)
from tests.harness.black_scholes import option_quotes

NOW = datetime(2024, 1, 3, 10, 0)
EXPIRIES = [date(2024, 1, 19), date(2024, 2, 16), date(2024, 3, 15), date(2024, 4, 19), date(2024, 5, 17)]


def chain(spot: float = 470.0, vol: float = 0.15, step: float = 1.0) -> List[OptionQuote]:
    low, high = int(spot * 0.70), int(spot * 1.25)
    strikes = [low + step * i for i in range(int((high - low) / step) + 1)]
    return option_quotes("SPY", spot, NOW, EXPIRIES, strikes, vol)


def without_deltas(quotes: Sequence[OptionQuote]) -> List[OptionQuote]:
    return [replace(quote, delta=None) for quote in quotes]


CHAIN = chain()


def test_expiry_nearest_target_within_window() -> None:
    assert expiry_nearest(CHAIN, NOW.date(), 120, 20) == date(2024, 4, 19)  # 107 DTE is nearest 120
    assert expiry_nearest(CHAIN, NOW.date(), 45, 5) == date(2024, 2, 16)  # 44 DTE
    missing = expiry_nearest(CHAIN, NOW.date(), 300, 20)
    assert isinstance(missing, NoPick) and "300" in missing.reason


def test_side_is_one_expiry_and_right_sorted_by_strike() -> None:
    puts = side(CHAIN, date(2024, 4, 19), Right.PUT)
    assert puts and all(q.right == Right.PUT and q.expiry == date(2024, 4, 19) for q in puts)
    assert [q.strike for q in puts] == sorted(q.strike for q in puts)


@settings(max_examples=30, derandomize=True)
@given(
    st.floats(min_value=0.04, max_value=0.35),
    st.sampled_from([Right.PUT, Right.CALL]),
    st.sampled_from(EXPIRIES[1:]),
)
def test_by_delta_picks_the_nearest_abs_delta(target: float, right: Right, expiry: date) -> None:
    quotes = side(CHAIN, expiry, right)
    picked = by_delta(quotes, target)
    assert isinstance(picked, OptionQuote)
    assert picked.delta is not None
    best_error = min(abs(abs(q.delta or 0.0) - target) for q in quotes)
    assert abs(abs(picked.delta) - target) == pytest.approx(best_error)
    # puts carry negative deltas, calls positive; puts picked below spot for small deltas, calls above
    assert (picked.delta < 0) == (right == Right.PUT)
    assert (picked.strike < 470.0) == (right == Right.PUT)


def test_by_delta_refuses_a_pick_far_from_target() -> None:
    near_money = [q for q in side(CHAIN, date(2024, 4, 19), Right.PUT) if q.strike >= 460]
    picked = by_delta(near_money, 0.05)
    assert isinstance(picked, NoPick) and "too far" in picked.reason


def test_percent_rule_when_the_chain_has_no_deltas() -> None:
    puts = without_deltas(side(CHAIN, date(2024, 4, 19), Right.PUT))
    picked = by_delta_or_fraction(puts, 0.25, 470.0, 0.93)
    assert isinstance(picked, OptionQuote) and picked.strike == 437.0  # nearest listed to 437.1
    with_deltas = by_delta_or_fraction(side(CHAIN, date(2024, 4, 19), Right.PUT), 0.25, 470.0, 0.93)
    assert isinstance(with_deltas, OptionQuote) and with_deltas.delta is not None
    assert isinstance(by_spot_fraction(puts, 0.0, 0.93), NoPick)


def test_points_away_takes_the_nearest_listed_strike_on_that_side() -> None:
    coarse = [q for q in side(CHAIN, date(2024, 4, 19), Right.PUT) if q.strike % 5 == 0]
    below = points_away(coarse, 440.0, -7.0)  # 433 is not listed: 435 is nearer than 430
    assert isinstance(below, OptionQuote) and below.strike == 435.0
    above = points_away(coarse, 440.0, 3.0)  # 443: 445 (2 away) beats 440 (not strictly above)
    assert isinstance(above, OptionQuote) and above.strike == 445.0
    assert isinstance(points_away(coarse, min(q.strike for q in coarse), -5.0), NoPick)
    assert isinstance(points_away(coarse, 440.0, 0.0), NoPick)


@settings(max_examples=40, derandomize=True)
@given(st.floats(min_value=330.0, max_value=530.0), st.floats(min_value=-40.0, max_value=40.0))
def test_points_away_is_strictly_beyond_and_nearest(start: float, points: float) -> None:
    puts = side(CHAIN, date(2024, 4, 19), Right.PUT)
    picked = points_away(puts, start, points)
    if points == 0:
        assert isinstance(picked, NoPick)
        return
    candidates = [q.strike for q in puts if (q.strike < start if points < 0 else q.strike > start)]
    if not candidates:
        assert isinstance(picked, NoPick)
        return
    assert isinstance(picked, OptionQuote)
    assert (picked.strike < start) if points < 0 else (picked.strike > start)
    assert abs(picked.strike - (start + points)) == pytest.approx(min(abs(s - (start + points)) for s in candidates))


def quote(strike: float, bid: float, ask: float, right: Right = Right.PUT) -> OptionQuote:
    symbol = f"SPY-20240419-{right.value}-{strike:g}"
    return OptionQuote(symbol, "SPY", right, strike, date(2024, 4, 19), bid, ask, None)


def test_structure_problems() -> None:
    long_put, short_put, naked = quote(440, 5.0, 5.2), quote(435, 4.0, 4.2), quote(410, 1.5, 1.6)
    good = [(long_put, 1), (short_put, -1), (naked, -2)]
    assert structure_problem(good, require_credit=True) is None
    assert net_price(good) == pytest.approx(5.1 - 4.1 - 2 * 1.55)
    no_bid = [(long_put, 1), (replace(short_put, bid=0.0), -1), (naked, -2)]
    assert "no bid" in (structure_problem(no_bid, require_credit=False) or "")
    debit = [(long_put, 1), (short_put, -1)]
    assert "no net credit" in (structure_problem(debit, require_credit=True) or "")
    assert structure_problem(debit, require_credit=False) is None
    assert "twice" in (structure_problem([(long_put, 1), (long_put, -1)], require_credit=False) or "")
    assert structure_problem([], require_credit=False) == "no legs"
    assert strictly_descending([440, 435, 410]) and not strictly_descending([440, 440, 410])


def test_empty_chain_gives_reasons_not_errors() -> None:
    assert isinstance(expiry_nearest([], NOW.date(), 120, 20), NoPick)
    assert isinstance(by_delta([], 0.25), NoPick)
    assert isinstance(by_delta_or_fraction([], 0.25, 470.0, 0.93), NoPick)
