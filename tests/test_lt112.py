from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import List, Optional

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import Params
from core.ports import OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from strategies.base import EntryPlan, position_units
from strategies.lt112 import LT112, LT112Config, is_first_wednesday
from tests.fake_market import FakeView, position_from_plan
from tests.fake_market import waiting as waiting_state
from tests.harness.black_scholes import option_quotes

SPOT = 470.0


def third_fridays(start: date, months: int) -> List[date]:
    out = []
    year, month = start.year, start.month
    for _ in range(months):
        fridays = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month and d.weekday() == 4]
        out.append(fridays[2])
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def synthetic_chain(now: datetime, spot: float = SPOT, vol: float = 0.15) -> List[OptionQuote]:
    strikes = [float(k) for k in range(int(spot * 0.75), int(spot * 1.05) + 1)]
    return option_quotes("SPY", spot, now, third_fridays(now.date(), 7), strikes, vol)


def waiting(last_entry_day: Optional[date] = None) -> StrategyStateRecord:
    return waiting_state("lt112", last_entry_day)


FIRST_WED = datetime(2024, 1, 3, 10, 0)  # January 2024 starts on a Monday
RULES = LT112(LT112Config(), Params())
CHAIN = synthetic_chain(FIRST_WED)


# -- entry day and time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 5, 1), True),  # month starting on a Wednesday: day 1
        (date(2024, 5, 8), False),
        (date(2024, 2, 7), True),  # month starting on a Thursday: day 7
        (date(2024, 2, 1), False),
        (date(2024, 1, 3), True),
        (date(2024, 1, 10), False),
        (date(2024, 1, 4), False),
    ],
)
def test_first_wednesday_examples(day: date, expected: bool) -> None:
    assert is_first_wednesday(day) is expected


@settings(max_examples=80, derandomize=True)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
def test_first_wednesday_is_the_earliest_wednesday_of_its_month(day: date) -> None:
    wednesdays = [d for d in calendar.Calendar().itermonthdates(day.year, day.month) if d.month == day.month]
    first = min(d for d in wednesdays if d.weekday() == 2)
    assert is_first_wednesday(day) is (day == first)


@pytest.mark.parametrize(
    ("now", "enters"),
    [
        (datetime(2024, 1, 3, 9, 59), False),
        (datetime(2024, 1, 3, 10, 0), True),
        (datetime(2024, 1, 3, 10, 59), True),
        (datetime(2024, 1, 3, 11, 0), False),
        (datetime(2024, 1, 10, 10, 0), False),  # second Wednesday
        (datetime(2024, 1, 4, 10, 0), False),  # Thursday
    ],
)
def test_entry_time_window(now: datetime, enters: bool) -> None:
    plan = RULES.entry_plan(FakeView(now, CHAIN), waiting(), 1.0)
    assert (plan is not None) is enters


def test_decisions_follow_the_view_clock_not_the_wall_clock() -> None:
    with freeze_time("2024-01-04 15:00:00"):  # wall clock on a Thursday afternoon
        assert RULES.entry_plan(FakeView(FIRST_WED, CHAIN), waiting(), 1.0) is not None
    with freeze_time("2024-01-03 10:00:00"):  # wall clock at the entry moment, view on Thursday
        assert RULES.entry_plan(FakeView(datetime(2024, 1, 4, 10, 0), CHAIN), waiting(), 1.0) is None


def test_once_per_cycle() -> None:
    view = FakeView(FIRST_WED, CHAIN)
    assert RULES.entry_plan(view, waiting(last_entry_day=date(2024, 1, 3)), 1.0) is None
    assert "already entered" in RULES.last_reason
    assert RULES.entry_plan(view, waiting(last_entry_day=date(2023, 12, 6)), 1.0) is not None


def test_disabled_and_zero_size_never_enter() -> None:
    off = LT112(LT112Config(enabled=False), Params())
    assert off.enabled is False
    assert off.entry_plan(FakeView(FIRST_WED, CHAIN), waiting(), 1.0) is None
    assert RULES.entry_plan(FakeView(FIRST_WED, CHAIN), waiting(), 0.0) is None
    assert RULES.entry_plan(FakeView(FIRST_WED, CHAIN, price=None), waiting(), 1.0) is None


# -- structure ------------------------------------------------------------------------------------------------------


def test_structure_is_one_one_two_on_the_expiry_nearest_120_dte() -> None:
    plan = RULES.entry_plan(FakeView(FIRST_WED, CHAIN, equity=1_000_000.0), waiting(), 1.0)
    assert plan is not None
    units = plan.units
    assert units >= 2
    long_put, short_put, naked = plan.legs
    assert [leg.quantity for leg in plan.legs] == [units, -units, -2 * units]
    assert all(leg.right == Right.PUT for leg in plan.legs)
    assert long_put.strike > short_put.strike > naked.strike
    assert long_put.strike - short_put.strike == pytest.approx(5.0)  # 50 ES points = 5 SPY points
    expiries = {leg.expiry for leg in plan.legs}
    candidates = third_fridays(FIRST_WED.date(), 7)
    nearest = min(candidates, key=lambda e: abs((e - FIRST_WED.date()).days - 120))
    assert expiries == {nearest} and plan.expiry == nearest
    by_symbol = {q.symbol: q for q in CHAIN}
    assert abs(abs(by_symbol[long_put.symbol].delta or 0) - 0.25) < 0.02
    assert abs(abs(by_symbol[naked.symbol].delta or 0) - 0.05) < 0.01
    assert plan.est_net_price < 0  # opened for a net credit
    naked_credit = 2 * by_symbol[naked.symbol].mid * 100 * units
    assert plan.profit_target == pytest.approx(0.95 * naked_credit)
    assert plan.max_loss == pytest.approx(min(2 * naked_credit, 0.02 * 1_000_000.0))
    assert plan.strikes == (long_put.strike, short_put.strike, naked.strike)


def test_without_deltas_the_strikes_have_about_the_target_delta() -> None:
    """No greeks but VIX known: the strikes are the ones with ~25 and ~5 delta at VIX/100, not fixed percents."""
    no_deltas = [replace(q, delta=None) for q in CHAIN]
    plan = RULES.entry_plan(FakeView(FIRST_WED, no_deltas, equity=1_000_000.0, vix=15.0), waiting(), 1.0)
    assert plan is not None
    long_put, _, naked = plan.legs
    delta_of = {q.symbol: abs(q.delta or 0.0) for q in CHAIN}  # the chain's real deltas (vol 0.15)
    assert abs(delta_of[long_put.symbol] - 0.25) <= 0.0625  # within the delta tolerance of by_delta
    assert abs(delta_of[naked.symbol] - 0.05) <= 0.02
    assert naked.strike != round(SPOT * 0.88)


def test_percent_fallback_without_deltas_or_vix() -> None:
    no_deltas = [replace(q, delta=None) for q in CHAIN]
    plan = RULES.entry_plan(FakeView(FIRST_WED, no_deltas, equity=1_000_000.0, vix=None), waiting(), 1.0)
    assert plan is not None
    long_put, short_put, naked = plan.legs
    assert long_put.strike == round(SPOT * 0.93)
    assert short_put.strike == long_put.strike - 5
    assert naked.strike == round(SPOT * 0.88)


def test_spx_width_is_fifty_points() -> None:
    spx_rules = LT112(LT112Config(), Params(underlying="SPX"))
    spot = 4700.0
    strikes = [float(k) for k in range(3500, 4900, 5)]
    quotes = option_quotes("SPX", spot, FIRST_WED, third_fridays(FIRST_WED.date(), 7), strikes, 0.15)
    plan = spx_rules.entry_plan(FakeView(FIRST_WED, quotes, price=spot, equity=5_000_000.0), waiting(), 1.0)
    assert plan is not None
    assert plan.legs[0].strike - plan.legs[1].strike == pytest.approx(50.0)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.floats(min_value=20_000.0, max_value=3_000_000.0), st.sampled_from([1.0, 0.5]))
def test_units_scale_with_equity_and_size_factor(equity: float, size_factor: float) -> None:
    view = FakeView(FIRST_WED, CHAIN, equity=equity)
    plan = RULES.entry_plan(view, waiting(), size_factor)
    full = RULES.entry_plan(view, waiting(), 1.0)
    if plan is None:
        assert "0 units" in RULES.last_reason
        return
    assert full is not None
    assert 1 <= plan.units <= 10
    assert plan.units <= full.units
    # the BP budget holds: units x margin estimate within equity x 6 % x size factor
    by_symbol = {q.symbol: q for q in CHAIN}
    per_unit = [(by_symbol[leg.symbol], leg.quantity // plan.units) for leg in plan.legs]
    assert plan.units * RULES.margin_per_unit(SPOT, per_unit) <= equity * 0.06 * size_factor + 1e-6


def test_no_expiry_in_window_gives_a_reason() -> None:
    short_chain = [q for q in CHAIN if (q.expiry - FIRST_WED.date()).days < 60]
    assert RULES.entry_plan(FakeView(FIRST_WED, short_chain), waiting(), 1.0) is None
    assert "no expiry" in RULES.last_reason


# -- exits ----------------------------------------------------------------------------------------------------------


def position_from(plan: EntryPlan) -> PositionRecord:
    return position_from_plan(plan, "p1", FIRST_WED)


@pytest.fixture(scope="module")
def opened() -> PositionRecord:
    plan = RULES.entry_plan(FakeView(FIRST_WED, CHAIN, equity=1_000_000.0), waiting(), 1.0)
    assert plan is not None
    return position_from(plan)


def naked_symbol(position: PositionRecord) -> str:
    return min((c for c in position.contracts if c.quantity < 0), key=lambda c: c.strike).symbol


def with_naked_mid(position: PositionRecord, mid: float, now: datetime) -> FakeView:
    base = next(q for q in CHAIN if q.symbol == naked_symbol(position))
    return FakeView(now, CHAIN, overrides={base.symbol: replace(base, bid=mid - 0.01, ask=mid + 0.01)})


def test_hold_when_nothing_fires(opened: PositionRecord) -> None:
    assert RULES.exit_reason(FakeView(FIRST_WED + timedelta(days=1), CHAIN), opened) is None


def test_profit_target_on_the_naked_puts(opened: PositionRecord) -> None:
    entry_mid = next(q for q in CHAIN if q.symbol == naked_symbol(opened)).mid
    later = FIRST_WED + timedelta(days=20)
    assert RULES.exit_reason(with_naked_mid(opened, entry_mid * 0.50, later), opened) is None
    reason = RULES.exit_reason(with_naked_mid(opened, entry_mid * 0.04, later), opened)
    assert reason is not None and "profit target" in reason


def test_stop_at_three_times_the_credit_or_two_percent_of_net_liq(opened: PositionRecord) -> None:
    entry_mid = next(q for q in CHAIN if q.symbol == naked_symbol(opened)).mid
    later = FIRST_WED + timedelta(days=20)
    units = position_units(opened)
    naked_credit = 2 * entry_mid * 100 * units
    # the loss that triggers: min(2x credit, 2 % of 1M); find the NP mid just below and just above it
    trigger_loss = min(2 * naked_credit, 20_000.0)
    mid_at_trigger = entry_mid + trigger_loss / (2 * 100 * units)
    assert RULES.exit_reason(with_naked_mid(opened, mid_at_trigger - 0.05, later), opened) is None
    reason = RULES.exit_reason(with_naked_mid(opened, mid_at_trigger + 0.05, later), opened)
    assert reason is not None and "stop" in reason


def test_exit_by_dte_even_without_quotes(opened: PositionRecord) -> None:
    day_31 = datetime.combine(opened.expiry - timedelta(days=31), FIRST_WED.time())
    day_30 = datetime.combine(opened.expiry - timedelta(days=30), FIRST_WED.time())
    assert RULES.exit_reason(FakeView(day_31, ()), opened) is None
    reason = RULES.exit_reason(FakeView(day_30, ()), opened)
    assert reason is not None and "DTE" in reason


def test_adopted_position_without_targets_only_uses_dte(opened: PositionRecord) -> None:
    adopted = replace(opened, profit_target=0.0, max_loss=0.0)
    entry_mid = next(q for q in CHAIN if q.symbol == naked_symbol(opened)).mid
    assert RULES.exit_reason(with_naked_mid(adopted, entry_mid * 0.01, FIRST_WED + timedelta(days=5)), adopted) is None
