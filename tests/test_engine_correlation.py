"""The risk record's correlation score follows the open positions: entry filled, exit filled, adoption, reconcile
and restart all recompute it (real RiskManager), and the record is saved when the score moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from core.params import Params
from core.ports import EventStatus, ListLog, OrderEventData
from core.records import PositionStatus, RiskRecord
from engine.engine import TradingEngine
from tests.test_engine_support import T0, FakeBroker, FakeRules, FakeStore, FakeView

ONE_SPY = 1 / 3  # SPY is in correlation group A2, limit 3


def engine_over(store: FakeStore, broker: FakeBroker, rules: FakeRules, minutes: int = 0) -> TradingEngine:
    now = T0 + timedelta(minutes=minutes)
    engine = TradingEngine(store, broker, Params(), ListLog(), [rules])  # the real RiskManager
    broker.engine = engine
    engine.start(now)
    engine.on_warmup_finished(FakeView(now=now))
    return engine


def saved_score(store: FakeStore) -> float:
    risk = store.memory["risk"]
    assert isinstance(risk, RiskRecord)
    return risk.correlation_score


def score(engine: TradingEngine) -> float:
    risk = engine.snapshot().risk
    assert risk is not None
    return risk.correlation_score


def test_entry_and_exit_fills_move_the_score_and_save_it_at_once() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    broker.auto_fill = True
    engine = engine_over(store, broker, rules)
    assert score(engine) == 0.0
    engine.on_market(FakeView(now=T0))
    assert engine.snapshot().open_positions()
    assert score(engine) == pytest.approx(ONE_SPY)
    assert saved_score(store) == pytest.approx(ONE_SPY)  # an immediate put, not just marked dirty
    rules.want_entry, rules.want_exit = False, True
    engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    assert engine.snapshot().open_positions() == ()
    assert score(engine) == 0.0 and saved_score(store) == 0.0


def test_adopted_holdings_count_and_the_score_is_saved() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    rules.want_entry = False
    broker.held = {"SPY-20240517-P-300": -3, "SPY-20240517-P-310": 3}  # two untracked contracts
    engine = engine_over(store, broker, rules)
    assert len(engine.snapshot().open_positions()) == 2  # one recovery position per contract
    assert score(engine) == pytest.approx(2 * ONE_SPY) and saved_score(store) == pytest.approx(2 * ONE_SPY)


def test_reconcile_that_cleans_an_orphan_lowers_the_score() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    broker.auto_fill = True
    engine = engine_over(store, broker, rules)
    engine.on_market(FakeView(now=T0))
    (position,) = engine.snapshot().open_positions()
    assert score(engine) == pytest.approx(ONE_SPY)
    rules.want_entry = False
    broker.held.clear()  # assigned or expired: the broker closed everything
    symbol = position.contracts[0].symbol
    engine.on_order_event(OrderEventData(900, 1, symbol, EventStatus.FILLED, 1, 0.0, "", T0, is_assignment=True))
    engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    assert engine.snapshot().positions[position.position_id].status is PositionStatus.CLOSED
    assert score(engine) == 0.0 and saved_score(store) == 0.0


def test_a_stale_saved_score_is_recomputed_at_warm_up() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    broker.auto_fill = True
    engine = engine_over(store, broker, rules)
    engine.on_market(FakeView(now=T0))
    engine.final_save()
    risk = store.memory["risk"]
    assert isinstance(risk, RiskRecord)
    store.memory["risk"] = replace(risk, correlation_score=0.0)  # written by code that never computed it
    rules.want_entry = False
    broker.engine = None
    broker.restart("run2")
    restarted = store.crash(keep_memory=True)
    again = engine_over(restarted, broker, rules, minutes=30)
    assert score(again) == pytest.approx(ONE_SPY) and saved_score(restarted) == pytest.approx(ONE_SPY)
