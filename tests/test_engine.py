"""TradingEngine with fakes: one full cycle, write-ahead ordering, odd and repeated events, restarts mid-entry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.ports import EventStatus, OrderEventData
from core.records import (
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionStatus,
    StrategyState,
    StrategyStateRecord,
)
from tests.test_engine_support import (
    STRUCTURE,
    T0,
    FakeBroker,
    FakeRules,
    FakeStore,
    FakeView,
    Rig,
    make_engine,
)


def state(rig: Rig) -> StrategyState:
    return rig.engine.snapshot().strategies["s1"].state


def groups(rig: Rig, purpose: GroupPurpose) -> list[OrderGroupRecord]:
    return [g for g in rig.engine.snapshot().groups.values() if g.purpose is purpose]


def test_full_cycle_entry_fill_position_exit_closed_waiting() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules(units=2))
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))
    snap = rig.engine.snapshot()
    (position,) = snap.open_positions("s1")
    assert state(rig) is StrategyState.ACTIVE
    assert {(c.symbol, c.quantity) for c in position.contracts} == {(leg.symbol, 2 * leg.quantity) for leg in STRUCTURE}
    assert position.profit_target == 150.0 and position.max_loss == 300.0 and position.entry_vix == 15.0
    assert position.expiry == min(leg.expiry for leg in STRUCTURE) and position.strikes == (400.0, 435.0, 440.0)
    assert position.entry_price == pytest.approx(-2.0)  # +1 -1 -2 at 1.0 each, per unit
    assert rig.store.memory[position.record_name] == position  # saved at once
    assert rig.broker.held == {leg.symbol: 2 * leg.quantity for leg in STRUCTURE}

    rig.rules.want_entry = False
    rig.rules.want_exit = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    snap = rig.engine.snapshot()
    closed = snap.positions[position.position_id]
    assert closed.status is PositionStatus.CLOSED and closed.realized_pnl == pytest.approx(0.0)
    assert rig.broker.held == {}
    assert state(rig) is StrategyState.WAITING
    history = [(t.from_state, t.to_state) for t in snap.strategies["s1"].history]
    assert history == [
        (StrategyState.WAITING, StrategyState.ENTERING),
        (StrategyState.ENTERING, StrategyState.ACTIVE),
        (StrategyState.ACTIVE, StrategyState.EXITING),
        (StrategyState.EXITING, StrategyState.CLOSED),
        (StrategyState.CLOSED, StrategyState.WAITING),
    ]
    assert rig.log.errors == []


def test_entry_group_and_entering_state_are_saved_and_flushed_before_submit() -> None:
    store, broker = FakeStore(), FakeBroker()
    seen: list[tuple[str, object, object]] = []

    def spy(tag: str) -> None:
        # what a crash right now would leave: only what reached the disk
        group = store.disk.get(f"group-{tag}")
        strategy = store.disk.get("strategy-s1")
        seen.append((tag, group, strategy))

    broker.on_submit = spy
    rig = make_engine(store, broker, FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    ((tag, group, strategy),) = seen
    assert isinstance(group, OrderGroupRecord) and group.group_id == tag
    assert group.purpose is GroupPurpose.ENTRY and group.status is GroupStatus.PENDING
    # the plan's facts ride on the group's own fields, on disk before the order goes out
    assert (group.profit_target, group.max_loss, group.entry_vix) == (150.0, 300.0, 15.0) and group.decision is None
    assert isinstance(strategy, StrategyStateRecord) and strategy.state is StrategyState.ENTERING
    assert strategy.group_id == tag and strategy.position_id == group.position_id
    assert strategy.last_entry_day == T0.date()


def test_no_order_when_the_store_refuses_the_write_ahead() -> None:
    store, broker = FakeStore(), FakeBroker()
    rig = make_engine(store, broker, FakeRules())
    store.refuse_puts = True
    rig.engine.on_market(FakeView(now=T0))
    assert broker.submitted == []
    assert state(rig) is StrategyState.WAITING
    (entry,) = groups(rig, GroupPurpose.ENTRY)
    assert entry.status is GroupStatus.FAILED


def test_no_orders_during_start_and_nothing_before_warmup() -> None:
    broker = FakeBroker()
    broker.auto_fill = True
    rig = make_engine(FakeStore(), broker, FakeRules(), warm=False)
    rig.engine.on_market(FakeView(now=T0))
    assert broker.submitted == [] and rig.rules.entry_calls == 0
    rig.engine.on_warmup_finished(FakeView(now=T0))
    rig.engine.on_market(FakeView(now=T0))
    assert len(broker.submitted) == 1


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "not an event",
        OrderEventData(999, 1, "???", EventStatus.FILLED, 5, 1.0, "", T0),
        OrderEventData(999, 1, "SPY-20240517-P-440", EventStatus.FILLED, 5, 1.0, "no-such-group", T0),
        OrderEventData(-1, -1, "", EventStatus.CANCELED, 0, float("nan"), "", T0, is_assignment=True),
    ],
)
def test_on_order_event_never_raises_on_garbage(garbage: object) -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    before = rig.engine.snapshot()
    rig.engine.on_order_event(garbage)  # type: ignore[arg-type]
    after = rig.engine.snapshot()
    assert dict(after.groups) == dict(before.groups) and dict(after.positions) == dict(before.positions)


def test_on_order_event_garbage_on_a_known_group_is_not_booked() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    (entry,) = groups(rig, GroupPurpose.ENTRY)
    wrong_sign = OrderEventData(1, 50, STRUCTURE[0].symbol, EventStatus.FILLED, -3, 1.0, entry.group_id, T0)
    other_contract = OrderEventData(1, 51, "SPY-20990101-C-1", EventStatus.FILLED, 1, 1.0, entry.group_id, T0)
    for event in (wrong_sign, other_contract):
        rig.engine.on_order_event(event)
    assert rig.engine.snapshot().groups[entry.group_id] == entry


def test_repeated_fill_events_never_count_twice() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules(units=2))
    rig.engine.on_market(FakeView(now=T0))
    long_order = next(o for o in rig.broker.orders.values() if o.quantity == 2)
    rig.broker.fill(long_order.order_id, 1)
    repeat = rig.broker.sent[-1]
    for _ in range(3):
        rig.engine.on_order_event(repeat)
    (entry,) = groups(rig, GroupPurpose.ENTRY)
    leg = next(leg for leg in entry.legs if leg.symbol == long_order.symbol)
    assert leg.filled_quantity == 1
    # the rest fills; repeating every event afterwards changes nothing
    for order in list(rig.broker.orders.values()):
        rig.broker.fill(order.order_id, order.quantity - order.filled)
    snapshot = rig.engine.snapshot()
    for event in list(rig.broker.sent):
        rig.engine.on_order_event(event)
    assert dict(rig.engine.snapshot().groups) == dict(snapshot.groups)
    (position,) = rig.engine.snapshot().open_positions("s1")
    assert sorted(c.quantity for c in position.contracts) == [-4, -2, 2]


def partially_filled_entry(units: int = 2) -> Rig:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules(units=units))
    rig.engine.on_market(FakeView(now=T0))
    orders = sorted(rig.broker.orders.values(), key=lambda o: o.quantity)
    rig.broker.fill(orders[-1].order_id, units)  # the long fills in full
    rig.broker.fill(orders[0].order_id, -1)  # one naked put of 2*units
    return rig


def restart(rig: Rig, run_id: str, *, market_open: bool = True, keep_memory: bool = False, minutes: int = 30) -> Rig:
    rig.broker.engine = None
    rig.broker.restart(run_id)
    store = rig.store.crash(keep_memory=keep_memory)
    now = T0 + timedelta(minutes=minutes)
    new = make_engine(store, rig.broker, rig.rules, now, warm=False)
    new.engine.on_warmup_finished(FakeView(now=now, market_open=market_open))
    return new


def assert_whole_structure_or_flat(rig: Rig) -> None:
    held = rig.broker.held
    if not held:
        assert rig.engine.snapshot().open_positions() == ()
        return
    (position,) = rig.engine.snapshot().open_positions()
    assert {c.symbol: c.quantity for c in position.contracts} == held
    units = {held.get(leg.symbol, 0) // leg.quantity for leg in STRUCTURE}
    assert len(units) == 1 and units.pop() > 0, held


@pytest.mark.parametrize("keep_memory", [False, True])
@pytest.mark.parametrize("orders_survive", [False, True])
def test_restart_after_partial_entry_fills_ends_whole_or_flat(keep_memory: bool, orders_survive: bool) -> None:
    rig = partially_filled_entry()
    rig.broker.engine = None
    if not orders_survive:
        for order in rig.broker.orders.values():
            order.open = False
    rig.broker.auto_fill = True
    new = restart(rig, "run2", keep_memory=keep_memory)
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=31)))
    if orders_survive:
        # leftovers are cancelled after the timeout, then the group is decided
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=40)))
    assert_whole_structure_or_flat(new)
    assert state(new) in (StrategyState.ACTIVE, StrategyState.WAITING)
    assert all(g.status is not GroupStatus.INCOMPLETE for g in new.engine.snapshot().groups.values())


def test_restart_while_market_closed_waits_then_completes_at_the_open() -> None:
    rig = partially_filled_entry()
    for order in rig.broker.orders.values():
        order.open = False  # orders died with the run
    rig.broker.auto_fill = True
    new = restart(rig, "run2", market_open=False)
    assert new.broker.submitted == rig.broker.submitted[:1]  # nothing new while closed
    (entry,) = groups(new, GroupPurpose.ENTRY)
    assert entry.status is GroupStatus.INCOMPLETE and "WAIT" in (entry.decision or "")
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=31)))
    assert_whole_structure_or_flat(new)
    assert new.broker.held and state(new) is StrategyState.ACTIVE


def test_fills_while_down_are_booked_from_holdings() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    rig.broker.engine = None  # down: fills happen with no event
    for order in list(rig.broker.orders.values()):
        rig.broker.fill(order.order_id, order.quantity)
    new = restart(rig, "run2")
    (position,) = new.engine.snapshot().open_positions("s1")
    assert {c.symbol: c.quantity for c in position.contracts} == rig.broker.held
    assert state(new) is StrategyState.ACTIVE
    assert any(kind == "missed-fill" for kind, _, _ in new.store.audits)


def test_untracked_holding_is_adopted_and_closed_at_the_open() -> None:
    store, broker = FakeStore(), FakeBroker()
    broker.held = {"SPY-20240517-P-300": -3}
    broker.auto_fill = True
    rules = FakeRules()
    rules.want_entry = False
    rig = make_engine(store, broker, rules)
    snap = rig.engine.snapshot()
    (adopted,) = snap.open_positions()
    assert adopted.strategy_id == "recovery"
    rig.engine.on_market(FakeView(now=T0))
    assert broker.held == {}
    assert rig.engine.snapshot().positions[adopted.position_id].status is PositionStatus.CLOSED


def test_unknown_saved_strategy_goes_to_error_and_never_crashes() -> None:
    store = FakeStore()
    store.memory["strategy-ghost"] = StrategyStateRecord("ghost", StrategyState.ACTIVE, None, T0, "old")
    rig = make_engine(store, FakeBroker(), FakeRules())
    assert rig.engine.snapshot().strategies["ghost"].state is StrategyState.ERROR
    assert any("ghost" in message for message in rig.log.errors)


def test_close_all_breaker_exits_every_position() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))
    assert rig.engine.snapshot().open_positions()
    risk = rig.engine._risk
    assert risk is not None
    risk.close_all = True  # type: ignore[attr-defined]
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    assert rig.engine.snapshot().open_positions() == () and rig.broker.held == {}
    assert state(rig) is StrategyState.WAITING


def test_final_save_retires_finished_cycles_and_keeps_open_ones() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))  # cycle 1 entered
    rig.rules.want_exit = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))  # cycle 1 closed
    rig.rules.want_exit = False
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=2)))  # cycle 2 entered
    closed = [p for p in rig.engine.snapshot().positions.values() if p.status is PositionStatus.CLOSED]
    (open_position,) = rig.engine.snapshot().open_positions()
    rig.engine.final_save()
    worked_on = rig.engine._positions, rig.engine._groups  # what the engine still works with
    assert list(worked_on[0]) == [open_position.position_id]
    assert {g.position_id for g in worked_on[1].values()} == {open_position.position_id}
    # the snapshot still shows the retired cycle (the demo and the crash drill read it)
    assert rig.engine.snapshot().positions[closed[0].position_id] == closed[0]
    assert f"position-{closed[0].position_id}" in rig.store.retired
    assert all(name not in rig.store.memory for name in rig.store.retired)
    assert rig.store.dirty == {} and rig.store.disk == rig.store.memory
    # a restart over the retired store is clean and keeps the open cycle
    rig.broker.engine = None
    rig.broker.restart("run2")
    again = make_engine(rig.store.crash(), rig.broker, rig.rules, T0 + timedelta(minutes=5))
    assert again.engine.snapshot().open_positions() == (open_position,)
    assert state(again) is StrategyState.ACTIVE
