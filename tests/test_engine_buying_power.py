"""Buying power by VIX regime: the engine refuses a new entry when the margin in use plus the plan's own BP share
would exceed RiskManager.max_bp_fraction(VIX), and says so once a day per strategy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.params import Params
from core.records import ContractRecord, PositionRecord, Right, StrategyState
from engine.facts import estimated_margin, plan_bp_fraction
from tests.test_engine_support import EXP, T0, FakeBroker, FakeRules, FakeStore, FakeView, Rig, make_engine

EQUITY = 100_000.0
SHARE = Params().lt112_bp_per_position  # FakeRules' "s1" has no figure of its own: charged the largest (6 %)


def fresh() -> Rig:
    return make_engine(FakeStore(), FakeBroker(), FakeRules())


def refusals(rig: Rig) -> list[str]:
    return [message for kind, message, _ in rig.store.audits if kind == "bp-refused"]


def test_unknown_strategy_is_charged_the_largest_bp_share() -> None:
    params = Params()
    assert plan_bp_fraction(params, "lt112") == params.lt112_bp_per_position
    assert plan_bp_fraction(params, "zero_dte") == params.zero_dte_bp_per_position
    assert plan_bp_fraction(params, "s1") == SHARE == max(params.lt112_bp_per_position, params.zero_dte_bp_per_position)


def test_entry_refused_above_the_regime_limit_and_logged_once_a_day() -> None:
    rig = fresh()
    # VIX 15 -> 60 % allowed; 55 % in use + 6 % for the plan = 61 %
    for minute in range(5):
        rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute), vix=15.0, margin_used=55_000.0))
    assert rig.broker.submitted == []
    assert rig.engine.snapshot().strategies["s1"].state is StrategyState.WAITING
    (message,) = refusals(rig)
    assert "s1" in message and "55000 (broker)" in message and "60%" in message
    next_day = T0 + timedelta(days=1)
    rig.engine.on_market(FakeView(now=next_day, vix=15.0, margin_used=55_000.0))
    assert len(refusals(rig)) == 2  # a new day, a new note


def test_entry_allowed_below_the_regime_limit() -> None:
    rig = fresh()
    rig.engine.on_market(FakeView(now=T0, vix=15.0, margin_used=54_000.0))  # 54 % + 6 % = 60 %: at the limit
    assert len(rig.broker.submitted) == 1 and refusals(rig) == []


@pytest.mark.parametrize(
    ("vix", "entered"),
    [(12.0, False), (15.0, True), (20.0, True), (27.0, False), (35.0, True), (None, False)],
)
def test_vix_regime_changes_the_limit(vix: float | None, entered: bool) -> None:
    # 50 % in use + 6 %: fits under 60 % (VIX 13-18), 75 % (18-25), 80 % (> 30, capped by the 20 % reserve),
    # not under 40 % (< 13, and unknown VIX) or 50 % (25-30)
    rig = fresh()
    rig.engine.on_market(FakeView(now=T0, vix=vix, margin_used=50_000.0))
    assert (len(rig.broker.submitted) == 1) is entered
    assert (refusals(rig) == []) is entered


def test_the_same_margin_is_refused_then_allowed_when_the_regime_changes() -> None:
    rig = fresh()
    rig.engine.on_market(FakeView(now=T0, vix=12.0, margin_used=50_000.0))
    assert rig.broker.submitted == []
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1), vix=19.0, margin_used=50_000.0))
    assert len(rig.broker.submitted) == 1


def held_position(short_quantity: int) -> PositionRecord:
    contracts = (
        ContractRecord(f"SPY-{EXP:%Y%m%d}-P-440", Right.PUT, 440.0, EXP, 5),
        ContractRecord(f"SPY-{EXP:%Y%m%d}-P-400", Right.PUT, 400.0, EXP, -short_quantity),
    )
    return PositionRecord("held", "other", "", T0, 0.0, contracts, EXP, (400.0, 440.0), None, 0.0, 0.0, "")


def test_estimated_margin_charges_shorts_at_the_naked_rate_without_otm_credit_and_longs_nothing() -> None:
    params = Params()
    # 5 short puts at 20 % of spot 470 (more than 10 % of the 400 strike), x100; the 5 longs cost nothing
    assert estimated_margin([held_position(5)], 470.0, params) == pytest.approx(5 * 0.20 * 470.0 * 100)
    assert estimated_margin([held_position(5)], None, params) == pytest.approx(5 * 0.20 * 400.0 * 100)


def test_without_a_broker_figure_the_estimate_from_open_positions_decides() -> None:
    store = FakeStore()
    position = held_position(6)  # 6 x 9,400 = 56,400 estimated: 56.4 % + 6 % > 60 %
    store.memory[position.record_name] = position
    broker = FakeBroker()
    broker.held = {c.symbol: c.quantity for c in position.contracts}
    rig = make_engine(store, broker, FakeRules())
    rig.engine.on_market(FakeView(now=T0, vix=15.0, margin_used=None, market_open=True))
    entries = [tag for tag, _ in broker.submitted if tag.endswith("-entry")]
    assert entries == []
    (message,) = refusals(rig)
    assert "estimated from open positions" in message
