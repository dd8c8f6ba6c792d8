"""The engine is made of parts with one job each (engine/engine.py lists them), composed, not inherited; and the
places that once asserted a risk manager now take the conservative path when there is none."""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace
from datetime import date
from pathlib import Path

from core.order_groups import apply_order_event, mark_submitted, new_group
from core.params import Params
from core.ports import EventStatus, LegSpec, ListLog, OrderEventData, SubmittedOrder
from core.records import GroupPurpose, LegStatus, Right
from engine.engine import TradingEngine
from engine.exercise import ExerciseBooking
from engine.ledger import Ledger
from engine.order_desk import OrderDesk
from engine.settlement import Settlement
from engine.startup import StartupRecovery
from engine.state import EngineState
from engine.trading_loop import TradingLoop
from recovery.decisions import DecisionAction
from tests.test_engine_support import T0, FakeBroker, FakeRisk, FakeRules, FakeStore, FakeView

ENGINE = Path(__file__).resolve().parent.parent / "engine"
PARTS = (EngineState, Ledger, OrderDesk, Settlement, StartupRecovery, ExerciseBooking, TradingLoop, TradingEngine)
EXP = date(2024, 5, 17)
LONG = LegSpec("SPY-20240517-P-440", "SPY", Right.PUT, 440.0, EXP, 1)
SHORT = LegSpec("SPY-20240517-P-430", "SPY", Right.PUT, 430.0, EXP, -1)


def unstarted_engine() -> tuple[TradingEngine, ListLog]:
    """An engine before start(): the only time it has no risk manager."""
    log = ListLog()
    return TradingEngine(FakeStore(), FakeBroker(), Params(), log, [FakeRules()], risk_factory=FakeRisk), log


def test_no_part_inherits_from_another() -> None:
    for part in PARTS:
        assert part.__bases__ == (object,), f"{part.__name__} inherits from {part.__bases__}"


def test_every_engine_file_stays_under_the_per_file_limit() -> None:
    for path in sorted(ENGINE.glob("*.py")):
        assert path.stat().st_size < 32_000, f"{path.name} is {path.stat().st_size} bytes"


def test_no_assert_on_the_engine_paths() -> None:
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text())
        asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not asserts, f"{path.name}: assert at lines {asserts}"


def test_the_facade_shows_only_the_engine_api() -> None:
    public = {name for name, _ in inspect.getmembers(TradingEngine, inspect.isfunction) if not name.startswith("_")}
    assert public == {
        "start",
        "on_warmup_finished",
        "on_market",
        "on_order_event",
        "scheduled_save",
        "final_save",
        "end_of_run",
        "snapshot",
    }


def test_plan_without_a_risk_manager_rolls_an_incomplete_entry_back_and_says_so() -> None:
    engine, log = unstarted_engine()
    entry = new_group("g1", "s1", GroupPurpose.ENTRY, "p1", (LONG, SHORT), T0, "run1")
    entry = mark_submitted(entry, [SubmittedOrder(LONG.symbol, 1), SubmittedOrder(SHORT.symbol, 2)], T0)
    fill = OrderEventData(1, 1, LONG.symbol, EventStatus.FILLED, 1, 3.0, "g1", T0)
    entry, _ = apply_order_event(entry, fill, "run1", T0)
    entry = replace(entry, legs=(entry.legs[0], replace(entry.legs[1], status=LegStatus.CANCELED)))
    engine._groups["g1"] = entry
    plan = engine._settlement.plan(orders_known=True, market_open=True)
    (decision,) = plan.decisions
    assert decision.action is DecisionAction.ROLL_BACK  # with entries allowed it would be completed
    assert any("without a risk manager" in message for message in log.errors)


def test_buying_power_without_a_risk_manager_refuses_the_entry_and_says_so() -> None:
    engine, log = unstarted_engine()
    assert not engine._loop._buying_power_allows("s1", 1.0, FakeView(margin_used=0.0))
    assert any("no risk manager" in message for message in log.errors)
