"""core/combo_limits.py: the combo limit price convention, its tick and the entry walk (pure)."""

from __future__ import annotations

import math
from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.combo_limits import limit_tick, limit_walk, unit_price
from core.contracts import combo_ratio
from core.ports import LegSpec
from core.records import Right

EXPIRY = date(2024, 1, 12)


def _leg(symbol: str, quantity: int, underlying: str = "SPY") -> LegSpec:
    return LegSpec(symbol, underlying, Right.PUT, 100.0, EXPIRY, quantity)


def test_unit_price_is_per_unit_of_the_ratio_legs_negative_for_a_credit() -> None:
    legs = [_leg("short", -4), _leg("long", 4), _leg("naked", -8)]
    assert combo_ratio(leg.quantity for leg in legs) == ([-1, 1, -2], 4)
    assert unit_price(legs, {"short": 2.0, "long": 1.5, "naked": 0.25}) == pytest.approx(-1.0)


def test_limit_tick_is_the_smallest_leg_increment_lean_rounds_to() -> None:
    assert limit_tick([_leg("a", 1), _leg("b", -1)]) == 0.01
    assert limit_tick([_leg("a", 1, "SPX"), _leg("b", -1, "SPX")]) == 0.05
    assert limit_tick([_leg("a", 1, "SPX"), _leg("b", -1)]) == 0.01


def test_a_walk_whose_mid_is_already_past_the_bound_is_empty() -> None:
    assert limit_walk(-0.30, -0.10, 0.01, 4, ceiling=-0.50) == []


def test_a_credit_walk_ends_one_tick_past_the_far_side() -> None:
    assert limit_walk(-1.005, -0.90, 0.01, 4, ceiling=-0.05) == [-1.01, -0.98, -0.95, -0.92, -0.89]


@given(
    mid=st.floats(-20, 20),
    spread=st.floats(0, 5),
    tick=st.sampled_from([0.01, 0.05, 0.10]),
    steps=st.integers(1, 8),
    room=st.floats(-5, 30),
)
def test_walk_prices_sit_on_the_grid_rise_and_stay_within_the_bound(
    mid: float, spread: float, tick: float, steps: int, room: float
) -> None:
    far = mid + spread
    ceiling = mid + room
    walk = limit_walk(mid, far, tick, steps, ceiling)
    for price in walk:
        assert math.isclose(price / tick, round(price / tick), abs_tol=1e-6), "on LEAN's grid"
        assert price <= ceiling + 1e-9, "never past the bound"
    assert all(a < b for a, b in pairwise(walk)), "rises, never repeats"
    assert len(walk) <= steps + 1
    if walk:
        assert walk[0] <= mid + 1e-9, "starts at mid or on the patient side of it"
        if ceiling >= far + tick:
            assert walk[-1] > far, "ends past the far side: LEAN fills only strictly below the limit"
    else:
        assert math.floor(mid / tick + 1e-9) * tick > ceiling - 1e-9
