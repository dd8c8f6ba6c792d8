"""Every risk fact a breaker depends on (peak equity, today's loss, the loss streak, the breaker) is written the
moment it changes, not left dirty for the scheduled save: a crash right after a new peak must not let the
restarted engine measure its drawdown from an older, lower peak."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import Params
from core.ports import ListLog
from core.records import BreakerLevel
from engine.engine import TradingEngine
from tests.test_engine_real_store import RealStore
from tests.test_engine_support import T0, FakeBroker, FakeRules, FakeView


def _engine(store: RealStore, broker: FakeBroker) -> TradingEngine:
    rules = FakeRules()
    rules.want_entry = False
    return TradingEngine(store, broker, Params(), ListLog(), [rules])


def test_crash_after_a_new_peak_restart_measures_drawdown_from_the_true_peak() -> None:
    now: List[datetime] = [T0]
    store, broker = RealStore(lambda: now[0]), FakeBroker("L-1")
    engine = _engine(store, broker)
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0, equity=100_000.0))
    now[0] = T0 + timedelta(minutes=1)
    engine.on_market(FakeView(now=now[0], equity=120_000.0))  # a new peak, no breaker change
    store.sim.flush()  # LEAN's flush timer runs between bars; no scheduled save has run since the peak
    now[0] = T0 + timedelta(minutes=2)
    restarted = RealStore(lambda: now[0], store.sim.crash())
    broker.restart("L-2")
    engine2 = _engine(restarted, broker)
    engine2.start(now[0])
    engine2.on_warmup_finished(FakeView(now=now[0], equity=106_000.0))  # 11.7 % below the true peak
    risk = engine2.snapshot().risk
    assert risk is not None and risk.peak_equity == 120_000.0
    assert risk.breaker is BreakerLevel.HALVE, "the drawdown is measured from the peak reached before the crash"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=60_000.0, max_value=140_000.0), min_size=1, max_size=12))
def test_no_risk_fact_is_left_dirty_after_a_bar(equities: List[float]) -> None:
    """Whatever equity does, after every bar the risk record in memory is the one handed to the ObjectStore."""
    now: List[datetime] = [T0]
    store, broker = RealStore(lambda: now[0]), FakeBroker("L-1")
    engine = _engine(store, broker)
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0, equity=100_000.0))
    for index, equity in enumerate(equities):
        now[0] = T0 + timedelta(days=index // 3, minutes=index)
        engine.on_market(FakeView(now=now[0], equity=equity))
        assert "risk" not in store.state.dirty_names
        assert store.state.get("risk") == engine.snapshot().risk
