"""The engine over the real StateStore and the simulated LocalObjectStore (pending saves lost on a crash), with
the real RiskManager where the scenario needs no risk knobs; and the stateful crash test over that store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, List, Optional

from hypothesis import HealthCheck, settings

from core.params import Params
from core.ports import ListLog
from core.records import GroupPurpose, PositionStatus, Record, StrategyState
from engine.engine import TradingEngine
from persistence.keys import Namespace
from persistence.loader import LoadResult
from persistence.store import StateStore
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.test_engine_stateful import EngineMachine, SimulatedCrash
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRules, FakeView

NAMESPACE = Namespace.for_run("123", True, "L-1", "")


class RealStore:
    """StateStore over a SimulatedObjectStore, shaped like the tests' FakeStore: `crash(keep_memory)` gives the
    store a restarted process would see (pending saves lost unless flushed first), `crash_in` kills the process
    before the n-th immediate write."""

    def __init__(self, clock: Callable[[], datetime], sim: Optional[SimulatedObjectStore] = None) -> None:
        self.clock = clock
        self.sim = sim or SimulatedObjectStore()
        self.log = ListLog()
        self.state = StateStore(SimulatedStorePort(self.sim), NAMESPACE, clock, self.log, wall_clock=lambda: 0.0)
        self.crash_in: Optional[int] = None

    def load_all(self) -> LoadResult:
        return self.state.load_all()

    def put(self, record: Record, immediate: bool = True) -> bool:
        if immediate and self.crash_in is not None:
            self.crash_in -= 1
            if self.crash_in <= 0:
                self.crash_in = None
                raise SimulatedCrash(f"crash before writing {record.record_name}")
        return self.state.put(record, immediate)

    def save_dirty(self) -> int:
        return self.state.save_dirty()

    def flush(self) -> bool:
        return self.state.flush()

    def audit(self, kind: str, message: str, ref: str = "") -> None:
        self.state.audit(kind, message, ref)

    def retire(self, *record_names: str) -> bool:
        return self.state.retire(*record_names)

    def crash(self, keep_memory: bool = False) -> RealStore:
        if keep_memory:
            self.sim.flush()
        return RealStore(self.clock, self.sim.crash())


def test_partial_entry_crash_restart_completes_over_the_real_store() -> None:
    now: List[datetime] = [T0]
    store, broker, rules = RealStore(lambda: now[0]), FakeBroker("L-1"), FakeRules(units=2)
    log = ListLog()
    engine = TradingEngine(store, broker, Params(), log, [rules])  # the real RiskManager
    broker.engine = engine
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0))
    engine.on_market(FakeView(now=T0))
    long_order = next(o for o in broker.orders.values() if o.quantity > 0)
    broker.fill(long_order.order_id, long_order.quantity)  # the long fills; the shorts never do
    assert store.sim.pending_keys(), "the fill is saved but not flushed yet"

    broker.engine = None
    for order in broker.orders.values():
        order.open = False  # the orders died with the process
    broker.restart("L-2")
    broker.auto_fill = True
    now[0] = T0 + timedelta(minutes=20)
    restarted = RealStore(lambda: now[0], store.sim.crash())
    log2 = ListLog()
    engine2 = TradingEngine(restarted, broker, Params(), log2, [rules])
    broker.engine = engine2
    engine2.start(now[0])
    assert broker.submitted[1:] == [], "no order during start"
    engine2.on_warmup_finished(FakeView(now=now[0]))
    snap = engine2.snapshot()
    (position,) = snap.open_positions("s1")
    assert {c.symbol: c.quantity for c in position.contracts} == broker.held
    assert broker.held == {leg.symbol: 2 * leg.quantity for leg in STRUCTURE}
    assert snap.strategies["s1"].state is StrategyState.ACTIVE
    (entry,) = [g for g in snap.groups.values() if g.purpose is GroupPurpose.ENTRY]
    assert entry.decision and "COMPLETE" in entry.decision and "[plan" not in entry.decision
    assert (entry.profit_target, entry.max_loss, entry.entry_vix) == (150.0, 300.0, 15.0)  # saved with the group
    assert (position.profit_target, position.max_loss, position.entry_vix) == (150.0, 300.0, 15.0)

    # end of day: the cycle is closed and retired; a third run starts clean
    rules.want_entry, rules.want_exit = False, True
    engine2.on_market(FakeView(now=now[0] + timedelta(minutes=1)))
    engine2.final_save()
    assert broker.held == {}
    assert engine2.snapshot().open_positions() == () and engine2._positions == {} and engine2._groups == {}
    third = TradingEngine(RealStore(lambda: now[0], restarted.sim.crash()), broker, Params(), ListLog(), [rules])
    third.start(now[0])
    assert third.snapshot().groups == {} and third.snapshot().positions == {}
    assert third.snapshot().strategies["s1"].state is StrategyState.WAITING


def test_risk_record_survives_a_restart_over_the_real_store() -> None:
    now: List[datetime] = [T0]
    store, broker, rules = RealStore(lambda: now[0]), FakeBroker("L-1"), FakeRules()
    rules.want_entry = False
    engine = TradingEngine(store, broker, Params(), ListLog(), [rules])
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0, equity=100_000.0))
    engine.on_market(FakeView(now=T0, equity=70_000.0))  # -30 %: CLOSE_ALL, saved at once
    breaker = engine.snapshot().risk
    assert breaker is not None and breaker.breaker.value == "CLOSE_ALL"
    engine2 = TradingEngine(RealStore(lambda: now[0], store.sim.crash()), broker, Params(), ListLog(), [rules])
    engine2.start(T0 + timedelta(minutes=1))
    restored = engine2.snapshot().risk
    assert restored is not None and restored.breaker == breaker.breaker and restored.peak_equity == 100_000.0
    engine.final_save()  # the 15:45 save records the day's drawdown point
    points = engine.snapshot().daily_drawdowns
    assert [(p.day, p.equity) for p in points] == [(T0.date(), 70_000.0)]


class RealStoreMachine(EngineMachine):
    """The stateful crash test, over the real store (torn slots aside, which the persistence tests cover)."""

    def make_store(self) -> RealStore:  # type: ignore[override]
        return RealStore(lambda: self.now)


RealStoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineStatefulRealStore = RealStoreMachine.TestCase


def test_closed_positions_keep_their_pnl_in_the_snapshot_until_retired() -> None:
    now: List[datetime] = [T0]
    broker, rules = FakeBroker("L-1"), FakeRules()
    broker.auto_fill = True
    engine = TradingEngine(RealStore(lambda: now[0]), broker, Params(), ListLog(), [rules])
    broker.engine = engine
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0))
    engine.on_market(FakeView(now=T0))
    rules.want_entry, rules.want_exit = False, True
    engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    (closed,) = engine.snapshot().positions.values()
    assert closed.status is PositionStatus.CLOSED and closed.realized_pnl is not None
