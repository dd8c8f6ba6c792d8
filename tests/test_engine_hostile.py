"""Impossible stored records meet the engine (issue 11): they are quarantined at load, the broker's holdings
decide what is held, and no order is ever sized from them. Also main.py through the offline harness with
corrupt and impossible records planted before it starts: it loads, saves and trades."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import List, Tuple

import pytest

from core.params import Params
from core.ports import ListLog
from core.records import GroupPurpose, GroupStatus, OrderGroupRecord
from engine.engine import TradingEngine
from engine.limits import record_limits
from persistence.keys import Namespace
from persistence.store import StateStore
from strategies import default_strategies
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.harness.simulation import Deployment
from tests.test_engine_support import T0, FakeBroker, FakeRules, FakeView
from tests.test_persistence_hostile import DEEP, _group_with, _leg

NAMESPACE = Namespace.for_run("123", True, "L-1", "")
LIMIT = record_limits(default_strategies(Params())).max_leg_contracts


def _store(sim: SimulatedObjectStore, now: List[datetime]) -> StateStore:
    port, limits = SimulatedStorePort(sim), record_limits(default_strategies(Params()))
    return StateStore(port, NAMESPACE, lambda: now[0], ListLog(), wall_clock=lambda: 0.0, record_limits=limits)


def _engine(sim: SimulatedObjectStore, broker: FakeBroker, rules: FakeRules, now: List[datetime]) -> TradingEngine:
    engine = TradingEngine(_store(sim, now), broker, Params(), ListLog(), [rules])
    broker.engine = engine
    return engine


def _tamper(sim: SimulatedObjectStore, now: List[datetime], purpose: GroupPurpose, change: object) -> Tuple[str, bytes]:
    """Rewrite the group of `purpose` in both its slots as a buggy writer or a hand edit would (a valid
    envelope and checksum around an impossible record), flushed; returns the newest key and its bytes."""
    editor = _store(sim, now)
    loaded = editor.load_all()
    (target,) = [g for g in loaded.groups.values() if g.purpose is purpose]
    assert callable(change)
    bad: OrderGroupRecord = change(target)
    for second in (1, 2):
        assert editor.put(replace(bad, updated_at=bad.updated_at + timedelta(seconds=second))) and editor.flush()
    key = NAMESPACE.record_key(bad.record_name, editor._slots[bad.record_name].slot)
    return key, sim.read_bytes(key)


def _sent_after(broker: FakeBroker, count: int) -> List[int]:
    return [quantity for _, legs in broker.submitted[count:] for _, quantity in legs]


def test_an_exit_group_with_a_million_pending_contracts_never_becomes_an_order() -> None:
    now = [T0]
    sim, broker, rules = SimulatedObjectStore(), FakeBroker("L-1"), FakeRules(units=2)
    broker.auto_fill = True
    engine = _engine(sim, broker, rules, now)
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0))
    engine.on_market(FakeView(now=T0))  # entry, filled in full
    held_after_entry = dict(broker.held)
    rules.want_entry, rules.want_exit, broker.auto_fill = False, True, False
    now[0] = T0 + timedelta(minutes=5)
    engine.on_market(FakeView(now=now[0]))  # exit submitted
    exit_orders = [o for o in broker.orders.values() if o.open]
    broker.fill(exit_orders[0].order_id, exit_orders[0].quantity)  # one leg of the exit fills: INCOMPLETE
    engine.final_save()
    sim.flush()
    broker.engine = None
    for order in broker.orders.values():
        order.open = False  # the rest died with the process

    def million(group: OrderGroupRecord) -> OrderGroupRecord:
        legs = list(group.legs)
        pending = next(i for i, leg in enumerate(legs) if leg.filled_quantity == 0)
        legs[pending] = replace(legs[pending], quantity=1_000_000 if legs[pending].quantity > 0 else -1_000_000)
        return replace(group, legs=tuple(legs), status=GroupStatus.INCOMPLETE)

    sim = sim.crash()
    key, planted = _tamper(sim, now, GroupPurpose.EXIT, million)
    assert b"1000000" in planted
    broker.restart("L-2", keep_open_orders=False)
    broker.auto_fill = True
    sent_before = len(broker.submitted)
    now[0] = T0 + timedelta(minutes=30)
    restarted = _engine(sim.crash(), broker, rules, now)
    restarted.start(now[0])
    restarted.on_warmup_finished(FakeView(now=now[0]))
    for minute in range(1, 4):
        restarted.on_market(FakeView(now=now[0] + timedelta(minutes=minute)))
    sent = _sent_after(broker, sent_before)
    assert sent and all(abs(quantity) <= LIMIT for quantity in sent)  # the exit was finished from holdings
    assert all(abs(q) <= abs(held_after_entry.get(s, 0)) for _, legs in broker.submitted[sent_before:] for s, q in legs)
    assert broker.held == {}  # the position is closed by what the broker held, not by the stored number
    assert restarted._store.port.store.read_bytes(key) == planted  # type: ignore[attr-defined]


def test_a_leg_filled_against_its_side_is_quarantined_and_its_events_do_not_stop_the_algorithm() -> None:
    now = [T0]
    sim, broker, rules = SimulatedObjectStore(), FakeBroker("L-1"), FakeRules(units=2)
    engine = _engine(sim, broker, rules, now)
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0))
    engine.on_market(FakeView(now=T0))  # entry submitted, nothing filled
    engine.final_save()
    sim.flush()
    broker.engine = None

    def wrong_side(group: OrderGroupRecord) -> OrderGroupRecord:
        legs = list(group.legs)
        short = next(i for i, leg in enumerate(legs) if leg.quantity == -2)
        legs[short] = replace(legs[short], filled_quantity=2)  # +2 of an order to sell 2
        return replace(group, legs=tuple(legs))

    sim = sim.crash()
    _tamper(sim, now, GroupPurpose.ENTRY, wrong_side)
    broker.restart("L-2")  # the entry orders are still open at the broker, with new ids
    now[0] = T0 + timedelta(minutes=10)
    restarted = _engine(sim.crash(), broker, rules, now)
    restarted.start(now[0])
    restarted.on_warmup_finished(FakeView(now=now[0]))
    short_order = next((o for o in broker.orders.values() if o.open and o.quantity == -2), None)
    if short_order is not None:  # still open: its fill arrives as an event (old code: ZeroDivisionError)
        broker.fill(short_order.order_id, -2)
    for minute in range(1, 4):
        restarted.on_market(FakeView(now=now[0] + timedelta(minutes=minute)))
    tracked: dict[str, int] = {}
    for position in restarted.snapshot().open_positions():
        for contract in position.contracts:
            tracked[contract.symbol] = tracked.get(contract.symbol, 0) + contract.quantity
    assert tracked == broker.held  # what is tracked is what is held, decided by the holdings
    assert all(abs(q) <= LIMIT for _, legs in broker.submitted for _, q in legs)
    log = restarted._log
    assert isinstance(log, ListLog) and not [line for line in log.errors if "not booked" in line]


# -- main.py through the harness -----------------------------------------------------------------------------

LIVE_NS = Namespace.for_run("424242", True, "L-1", "")
START, END = date(2024, 1, 2), date(2024, 1, 12)


def _impossible_exit_group() -> str:
    return _group_with(_leg(quantity=-1_000_000), status=GroupStatus.INCOMPLETE, purpose=GroupPurpose.EXIT)


PLANTS = {
    "deep manifest": (LIVE_NS.manifest_key("b"), DEEP.encode),
    "deep risk": (LIVE_NS.record_key("risk", "a"), DEEP.encode),
    "not utf-8 strategy": (LIVE_NS.record_key("strategy-lt112", "a"), lambda: b"\xff\xfe{}"),
    "impossible exit group": (LIVE_NS.record_key("group-g2", "a"), lambda: _impossible_exit_group().encode()),
}


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_main_py_loads_saves_and_trades_over_planted_hostile_records(name: str) -> None:
    key, make = PLANTS[name]
    deployment = Deployment(seed=1, start=START, end=END)
    planted = make()
    deployment.store.save_bytes(key, planted)
    deployment.store.flush()
    deployment.run()
    assert deployment.runtime_error is None
    orders = list(deployment.brokerage.orders.values())
    assert orders, "it still trades"
    assert all(abs(order.quantity) <= LIMIT for order in orders)
    disk = SimulatedObjectStore(disk=deployment.store.disk)
    assert disk.read_bytes(key) == planted
    saved = [k for k in disk.keys if k.startswith(LIVE_NS.root + "/records/strategy-")]
    assert saved, "the strategies were saved"
    errors = [text for _, kind, text in deployment.algorithm.logs if kind == "error" and key in text]
    assert len(errors) == 1, errors
