from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import List, Optional

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import Params
from core.ports import OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import NoPick, by_delta
from strategies.base import EntryPlan, position_pnl
from strategies.zero_dte import CALL_SPREAD, IRON_CONDOR, PUT_SPREAD, ZeroDte, ZeroDteConfig
from tests.fake_market import FakeView, position_from_plan
from tests.fake_market import waiting as waiting_state
from tests.harness.black_scholes import option_quotes

FRIDAY = date(2024, 1, 5)
ENTRY = datetime(2024, 1, 5, 10, 30)
OPEN = 470.0


def chain_at(now: datetime, spot: float, underlying: str = "SPY", step: float = 1.0) -> List[OptionQuote]:
    low, high = spot * 0.9, spot * 1.1
    strikes = [round(low + step * i, 2) for i in range(int((high - low) / step) + 1)]
    expiries = [now.date(), now.date() + timedelta(days=7)]
    # 0.25: Black-Scholes here runs on calendar time, which understates intraday variance; 0.25 gives 0DTE
    # prices and deltas like a ~VIX 15-20 day in trading time (a 20 delta short ~0.5 % from spot)
    return option_quotes(underlying, spot, now, expiries, [float(round(k)) for k in strikes], 0.25)


def waiting(last_entry_day: Optional[date] = None) -> StrategyStateRecord:
    return waiting_state("zero_dte", last_entry_day)


RULES = ZeroDte(ZeroDteConfig(), Params())
FLAT_CHAIN = chain_at(ENTRY, OPEN)


def view_at(now: datetime, spot: float = OPEN, **kwargs: object) -> FakeView:
    quotes = FLAT_CHAIN if (now, spot) == (ENTRY, OPEN) else chain_at(now, spot)
    return FakeView(now, quotes, price=spot, **kwargs)  # type: ignore[arg-type]


# -- entry day and time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "enters"),
    [
        (datetime(2024, 1, 5, 10, 29), False),  # never earlier than 10:30
        (datetime(2024, 1, 5, 10, 30), True),
        (datetime(2024, 1, 5, 10, 44), True),  # a missed bar still enters inside the window
        (datetime(2024, 1, 5, 10, 45), False),
        (datetime(2024, 1, 4, 10, 30), False),  # Thursday
        (datetime(2024, 1, 6, 10, 30), False),  # Saturday
    ],
)
def test_entry_only_friday_from_1030(now: datetime, enters: bool) -> None:
    plan = RULES.entry_plan(view_at(now), waiting(), 1.0)
    assert (plan is not None) is enters


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.integers(min_value=0, max_value=6), st.integers(min_value=9 * 60 + 30, max_value=16 * 60))
def test_entry_moment_property(weekday_offset: int, minute_of_day: int) -> None:
    day = date(2024, 1, 1) + timedelta(days=weekday_offset)  # 2024-01-01 is a Monday
    now = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60))
    plan = RULES.entry_plan(FakeView(now, FLAT_CHAIN if day == FRIDAY else ()), waiting(), 1.0)
    expected = day.weekday() == 4 and time(10, 30) <= now.time() < time(10, 45)
    assert (plan is not None) is expected


def test_decisions_follow_the_view_clock_not_the_wall_clock() -> None:
    with freeze_time("2024-01-04 09:00:00"):
        assert RULES.entry_plan(view_at(ENTRY), waiting(), 1.0) is not None


def test_once_per_day() -> None:
    assert RULES.entry_plan(view_at(ENTRY), waiting(last_entry_day=FRIDAY), 1.0) is None
    assert "already entered" in RULES.last_reason
    assert RULES.entry_plan(view_at(ENTRY), waiting(last_entry_day=FRIDAY - timedelta(days=7)), 1.0) is not None


def test_needs_session_open_and_a_today_expiry() -> None:
    assert RULES.entry_plan(FakeView(ENTRY, FLAT_CHAIN, open_price=None), waiting(), 1.0) is None
    next_week_only = [q for q in FLAT_CHAIN if q.expiry != FRIDAY]
    assert RULES.entry_plan(FakeView(ENTRY, next_week_only), waiting(), 1.0) is None
    assert "expires today" in RULES.last_reason


def test_vix_floor_is_off_by_default_and_configurable() -> None:
    assert RULES.entry_plan(view_at(ENTRY, vix=None), waiting(), 1.0) is not None
    floored = ZeroDte(ZeroDteConfig(min_vix=22.0), Params())
    assert floored.entry_plan(view_at(ENTRY, vix=18.0), waiting(), 1.0) is None
    assert floored.entry_plan(view_at(ENTRY, vix=25.0), waiting(), 1.0) is not None


# -- structure ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "kind"),
    [(0.006, CALL_SPREAD), (-0.006, PUT_SPREAD), (0.004, IRON_CONDOR), (-0.004, IRON_CONDOR), (0.0, IRON_CONDOR)],
)
def test_structure_follows_the_move_from_the_open(move: float, kind: str) -> None:
    assert RULES.structure_for_move(move) == kind
    follow = ZeroDte(ZeroDteConfig(fade_moves=False), Params())
    if kind != IRON_CONDOR:
        assert follow.structure_for_move(move) != kind


def legs_by_right(plan: EntryPlan, right: Right) -> List[tuple[float, int]]:
    return sorted((leg.strike, leg.quantity) for leg in plan.legs if leg.right == right)


def test_up_move_sells_a_call_spread_above_spot() -> None:
    spot = OPEN * 1.007
    plan = RULES.entry_plan(view_at(ENTRY, spot), waiting(), 1.0)
    assert plan is not None and CALL_SPREAD in plan.reason
    units = plan.units
    calls = legs_by_right(plan, Right.CALL)
    assert legs_by_right(plan, Right.PUT) == []
    (short_strike, short_qty), (long_strike, long_qty) = calls
    assert (short_qty, long_qty) == (-units, units)
    assert short_strike > spot and long_strike - short_strike == pytest.approx(3.0)
    assert all(leg.expiry == FRIDAY for leg in plan.legs) and plan.expiry == FRIDAY
    assert plan.est_net_price < 0


def test_down_move_sells_a_put_spread_below_spot() -> None:
    spot = OPEN * 0.993
    plan = RULES.entry_plan(view_at(ENTRY, spot), waiting(), 1.0)
    assert plan is not None and PUT_SPREAD in plan.reason
    (long_strike, long_qty), (short_strike, short_qty) = legs_by_right(plan, Right.PUT)
    assert (short_qty, long_qty) == (-plan.units, plan.units)
    assert short_strike < spot and short_strike - long_strike == pytest.approx(3.0)


def test_flat_day_sells_an_iron_condor_with_shorts_near_20_delta() -> None:
    plan = RULES.entry_plan(view_at(ENTRY), waiting(), 1.0)
    assert plan is not None and IRON_CONDOR in plan.reason
    puts, calls = legs_by_right(plan, Right.PUT), legs_by_right(plan, Right.CALL)
    assert [q for _, q in puts] == [plan.units, -plan.units] and [q for _, q in calls] == [-plan.units, plan.units]
    assert puts[0][0] < puts[1][0] < OPEN < calls[0][0] < calls[1][0]
    by_symbol = {q.symbol: q for q in FLAT_CHAIN}
    for leg in plan.legs:
        if leg.quantity < 0:
            delta = abs(by_symbol[leg.symbol].delta or 0.0)
            listed = [abs(q.delta or 0.0) for q in FLAT_CHAIN if q.expiry == FRIDAY and q.right == leg.right]
            assert abs(delta - 0.20) == pytest.approx(min(abs(d - 0.20) for d in listed))  # nearest listed
            assert 0.10 <= delta <= 0.30
    credit = -plan.est_net_price * 100 * plan.units
    assert plan.profit_target == pytest.approx(0.5 * credit)
    assert plan.max_loss == pytest.approx(1.0 * credit)


def test_spx_wings_are_thirty_points() -> None:
    spx = ZeroDte(ZeroDteConfig(), Params(underlying="SPX"))
    quotes = chain_at(ENTRY, 4700.0, underlying="SPX", step=5.0)
    view = FakeView(ENTRY, quotes, price=4700.0, open_price=4700.0, equity=2_000_000.0)
    plan = spx.entry_plan(view, waiting(), 1.0)
    assert plan is not None
    for right in (Right.PUT, Right.CALL):
        strikes = [strike for strike, _ in legs_by_right(plan, right)]
        assert strikes[1] - strikes[0] == pytest.approx(30.0)


def test_never_a_30_delta_short_where_the_rule_says_15_to_25() -> None:
    quote = FLAT_CHAIN[0]
    thirty = [replace(quote, symbol=f"X{n}", strike=470.0 + n, delta=d) for n, d in enumerate((0.30, 0.32, 0.9))]
    assert isinstance(by_delta(thirty, 0.20), NoPick)


def test_percent_fallback_without_deltas_or_vix() -> None:
    no_deltas = [replace(q, delta=None) for q in FLAT_CHAIN]
    plan = RULES.entry_plan(FakeView(ENTRY, no_deltas, vix=None), waiting(), 1.0)
    assert plan is not None
    shorts = sorted(leg.strike for leg in plan.legs if leg.quantity < 0)
    assert shorts == [round(OPEN * (1 - 0.0075)), round(OPEN * (1 + 0.0075))]


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.floats(min_value=5_000.0, max_value=2_000_000.0), st.sampled_from([1.0, 0.5, 0.0]))
def test_units_fit_the_risk_budget(equity: float, size_factor: float) -> None:
    plan = RULES.entry_plan(view_at(ENTRY, equity=equity), waiting(), size_factor)
    if plan is None:
        assert size_factor == 0.0 or "0 units" in RULES.last_reason
        return
    widest = 3.0
    risk_per_unit = (widest + plan.est_net_price) * 100
    assert 1 <= plan.units <= 25
    assert plan.units * risk_per_unit <= equity * 0.02 * size_factor + 1e-6


# -- exits ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def condor() -> PositionRecord:
    plan = RULES.entry_plan(view_at(ENTRY), waiting(), 1.0)
    assert plan is not None
    return position_from_plan(plan, "z1", ENTRY)


def marks(position: PositionRecord, now: datetime, spot: float) -> FakeView:
    return FakeView(now, chain_at(now, spot), price=spot)


def test_profit_target_when_premium_decays(condor: PositionRecord) -> None:
    # same spot, less time: the condor's value decays; the target fires once P&L reaches 50 % of the credit
    for hour in (11, 12, 13, 14):
        calm = marks(condor, datetime(2024, 1, 5, hour, 0), OPEN)
        pnl = position_pnl(calm, condor)
        assert pnl is not None
        reason = RULES.exit_reason(calm, condor)
        if pnl >= condor.profit_target:
            assert reason is not None and "profit target" in reason
        else:
            assert reason is None
    late = position_pnl(marks(condor, datetime(2024, 1, 5, 14, 0), OPEN), condor)
    assert late is not None and late >= condor.profit_target  # decay alone gets there before 14:30


def test_stop_when_the_short_side_is_run_over(condor: PositionRecord) -> None:
    rally = marks(condor, datetime(2024, 1, 5, 11, 0), OPEN * 1.012)
    pnl = position_pnl(rally, condor)
    assert pnl is not None and -pnl >= condor.max_loss
    reason = RULES.exit_reason(rally, condor)
    assert reason is not None and reason.startswith("stop")


def test_time_rules_apply_without_quotes(condor: PositionRecord) -> None:
    def reason_at(hh: int, mm: int) -> Optional[str]:
        return RULES.exit_reason(FakeView(datetime(2024, 1, 5, hh, mm)), condor)

    assert reason_at(14, 59) is None  # no marks: the 14:30 evaluation cannot judge, the 15:00 stop will
    assert "time stop" in (reason_at(15, 0) or "")
    assert "deadline" in (reason_at(15, 30) or "")
    assert reason_at(10, 0) is None
    assert RULES.exit_reason(FakeView(datetime(2024, 1, 8, 10, 0)), condor) == "past expiry"


def test_1430_evaluation_cuts_a_loser_and_keeps_a_winner(condor: PositionRecord) -> None:
    at_1430 = datetime(2024, 1, 5, 14, 30)
    symbols = {c.symbol for c in condor.contracts}
    base = {q.symbol: q for q in FLAT_CHAIN if q.symbol in symbols}

    def scaled(factor_short: float) -> FakeView:
        overrides = {}
        for contract in condor.contracts:
            quote = base[contract.symbol]
            factor = factor_short if contract.quantity < 0 else 1.0
            overrides[contract.symbol] = replace(quote, bid=quote.bid * factor, ask=quote.ask * factor)
        return FakeView(at_1430, overrides=overrides)

    small_loss = scaled(1.10)
    pnl_loss = position_pnl(small_loss, condor)
    assert pnl_loss is not None and -condor.max_loss < pnl_loss <= 0
    assert "evaluation" in (RULES.exit_reason(small_loss, condor) or "")
    small_gain = scaled(0.85)
    pnl_gain = position_pnl(small_gain, condor)
    assert pnl_gain is not None and 0 < pnl_gain < condor.profit_target
    assert RULES.exit_reason(small_gain, condor) is None
    assert RULES.exit_reason(replace(small_loss, now=datetime(2024, 1, 5, 14, 29)), condor) is None
