"""Buying power by VIX regime: the engine refuses a new entry when the margin in use plus the plan's own BP share
would exceed RiskManager.max_bp_fraction(VIX), and says so once a day per strategy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.params import Params
from core.ports import ListLog
from core.records import ContractRecord, PositionRecord, Right, StrategyState
from engine.engine import TradingEngine
from strategies import default_strategies
from strategies.base import conservative_margin
from tests.test_engine_support import (
    EXP,
    T0,
    FakeBroker,
    FakeRisk,
    FakeRules,
    FakeStore,
    FakeView,
    Rig,
    make_engine,
)

EQUITY = 100_000.0


def fresh() -> Rig:
    return make_engine(FakeStore(), FakeBroker(), FakeRules())


def refusals(rig: Rig) -> list[str]:
    return [message for kind, message, _ in rig.store.audits if kind == "bp-refused"]


def test_each_strategy_states_its_own_bp_share() -> None:
    shares = {s.strategy_id: s.bp_share() for s in default_strategies(Params())}
    assert shares["lt112"] == 0.06 and shares["zero_dte"] == 0.02  # [F] 6 % per LT112, about 2 % per spread


class BrokenShare(FakeRules):
    def bp_share(self) -> float:
        raise RuntimeError("a fork's bug")


def test_a_strategy_whose_bp_hook_fails_is_charged_the_largest_share_of_the_run() -> None:
    # s2's own hook fails: it is charged 100 % (the largest any hook of the run gives, its own failing one
    # counted as 1.0), so nothing fits and the failure is logged, never raised
    quiet, broken = FakeRules("s1"), BrokenShare("s2")
    quiet.want_entry = False
    broker, log = FakeBroker(), ListLog()
    engine = TradingEngine(FakeStore(), broker, Params(), log, [quiet, broken], risk_factory=FakeRisk)
    broker.engine = engine
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0))
    engine.on_market(FakeView(now=T0, vix=15.0, margin_used=0.0))
    assert broker.submitted == [] and broken.entry_calls == 1
    assert any("s2 bp_share failed" in line for line in log.errors)


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
    assert conservative_margin(held_position(5), 470.0, params) == pytest.approx(5 * 0.20 * 470.0 * 100)
    assert conservative_margin(held_position(5), None, params) == pytest.approx(5 * 0.20 * 400.0 * 100)


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
