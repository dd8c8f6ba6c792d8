"""The monthly put credit spread: the third strategy, written as one file against the strategy API."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Optional

import pytest

from core.params import Params, read_config
from core.records import PositionStatus, Right, StrategyStateRecord
from strategies import REGISTERED, build_strategies, strategy_classes
from strategies.put_credit_spread import PutCreditSpread, PutCreditSpreadConfig
from tests.fake_market import FakeView, position_from_plan
from tests.fake_market import waiting as waiting_state
from tests.harness.simulation import Deployment
from tests.test_lt112 import synthetic_chain

FIRST_DAY = datetime(2024, 1, 2, 11, 0)  # the first trading day of 2024, at the entry time
CHAIN = synthetic_chain(FIRST_DAY)
ON = PutCreditSpreadConfig(enabled=True)
RULES = PutCreditSpread(ON, Params())


def waiting(last_entry_day: Optional[date] = None) -> StrategyStateRecord:
    return waiting_state("put_credit_spread", last_entry_day)


def test_it_is_registered_by_its_module_and_read_from_prefixed_parameters() -> None:
    assert "strategies.put_credit_spread" in REGISTERED
    assert PutCreditSpread in strategy_classes()
    values = {"put-credit-spread-enabled": "true", "put-credit-spread-exit-dte": "14"}
    built = {s.strategy_id: s for s in build_strategies(values.get, Params())}
    spread = built["put_credit_spread"]
    assert isinstance(spread, PutCreditSpread) and spread.enabled and spread.config.exit_dte == 14
    with pytest.raises(ValueError, match="'put-credit-spread-exit-dte'"):
        read_config(PutCreditSpreadConfig, {"put-credit-spread-exit-dte": "45"}.get)


def test_off_unless_switched_on() -> None:
    default = PutCreditSpread(PutCreditSpreadConfig(), Params())
    assert default.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(), 1.0) is None
    assert default.last_reason == "put_credit_spread disabled" and default.last_skip_routine


def test_entry_sells_the_30_delta_put_about_45_days_out_with_a_put_width_below() -> None:
    plan = RULES.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(), 1.0)
    assert plan is not None, RULES.last_reason
    short, long = sorted(plan.legs, key=lambda leg: leg.quantity)
    assert short.quantity == -plan.units and long.quantity == plan.units and 1 <= plan.units <= ON.max_units
    assert short.right is Right.PUT and long.right is Right.PUT and short.expiry == long.expiry == plan.expiry
    assert abs((plan.expiry - FIRST_DAY.date()).days - ON.dte) <= ON.dte_window
    assert short.strike - long.strike == pytest.approx(RULES.width) == pytest.approx(5.0)  # 50 index points on SPY
    quote = next(q for q in CHAIN if q.symbol == short.symbol)
    assert quote.delta is not None and abs(abs(quote.delta) - ON.short_put_delta) < 0.05
    assert plan.credit is not None and plan.credit > 0 and plan.est_net_price < 0
    assert plan.profit_target == pytest.approx(ON.profit_target * plan.credit)
    assert plan.max_loss == pytest.approx(ON.stop_credit_multiple * plan.credit)


def test_once_a_month() -> None:
    assert RULES.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(date(2024, 1, 2)), 1.0) is None
    assert RULES.last_reason.startswith("already entered this month")
    february = datetime(2024, 2, 1, 11, 0)
    assert RULES.entry_plan(FakeView(february, synthetic_chain(february)), waiting(date(2024, 1, 2)), 1.0)


def test_outside_the_window_and_at_zero_size_there_is_no_entry() -> None:
    early = FIRST_DAY - timedelta(minutes=30)
    assert RULES.entry_plan(FakeView(early, CHAIN), waiting(), 1.0) is None and RULES.last_skip_routine
    assert RULES.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(), 0.0) is None
    assert RULES.last_reason == "risk allows no new position" and not RULES.last_skip_routine


def test_a_credit_too_small_for_the_width_is_refused_with_the_numbers() -> None:
    picky = PutCreditSpread(replace(ON, min_credit_width=0.9), Params())
    assert picky.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(), 1.0) is None
    assert "below 90% of the 5 width" in picky.last_reason


def _mark(view: FakeView, factor: float) -> FakeView:
    """The view with every quote's bid and ask scaled (an option market moved against or for the spread)."""
    moved = [replace(q, bid=q.bid * factor, ask=q.ask * factor) for q in view.quotes]
    return replace(view, quotes=moved)


def _opened() -> tuple[FakeView, object]:
    view = FakeView(FIRST_DAY, CHAIN)
    plan = RULES.entry_plan(view, waiting(), 1.0)
    assert plan is not None
    return view, position_from_plan(plan, "pcs-1", FIRST_DAY)


def test_exits_at_the_stored_target_the_stored_stop_and_by_21_dte() -> None:
    view, position = _opened()
    assert RULES.exit_reason(view, position) is None  # at mid, right after the fill: nothing to do
    assert (RULES.exit_reason(_mark(view, 0.3), position) or "").startswith("profit target")
    assert (RULES.exit_reason(_mark(view, 2.5), position) or "").startswith("stop")
    expiry = position.expiry  # type: ignore[attr-defined]
    late = replace(view, now=datetime.combine(expiry - timedelta(days=21), FIRST_DAY.time()))
    assert (RULES.exit_reason(late, position) or "").startswith("exit by DTE")


def test_a_changed_parameter_after_restart_leaves_the_stored_targets_alone() -> None:
    view, position = _opened()
    restarted = PutCreditSpread(replace(ON, profit_target=0.1, stop_credit_multiple=5.0), Params())
    cheap = _mark(view, 0.8)  # 20 % of the credit earned: above the new 10 %, below the stored 50 %
    assert restarted.exit_reason(cheap, position) is None


def test_the_option_subscription_reaches_its_long_put_and_expiry() -> None:
    reach = RULES.option_reach(470.0)
    plan = RULES.entry_plan(FakeView(FIRST_DAY, CHAIN), waiting(), 1.0)
    assert plan is not None
    lowest = min(leg.strike for leg in plan.legs)
    assert reach.points_below >= 470.0 - lowest and reach.max_days >= (plan.expiry - FIRST_DAY.date()).days


def test_in_the_harness_it_enters_each_month_and_never_holds_into_expiry() -> None:
    run = Deployment(
        seed=11, start=date(2024, 1, 2), end=date(2024, 3, 28), parameters={"put-credit-spread-enabled": "true"}
    ).run()
    assert run.runtime_error is None
    spreads = [p for p in run.engine.snapshot().positions.values() if p.strategy_id == "put_credit_spread"]
    assert sorted({p.entry_time.month for p in spreads}) == [1, 2, 3]
    for position in spreads:
        if position.status is PositionStatus.CLOSED:
            assert position.exit_time is not None and position.exit_time.date() < position.expiry
            assert position.realized_pnl is not None
