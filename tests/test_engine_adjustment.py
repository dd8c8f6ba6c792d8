"""Strategy.adjustment: a partial close (Reduce) through the engine, write-ahead and crash-safe like an exit."""

from __future__ import annotations

from datetime import timedelta
from typing import Dict, Optional

from core.records import GroupPurpose, GroupStatus, PositionRecord, PositionStatus, StrategyState
from engine.facts import position_holdings
from strategies.base import Reduce
from tests.test_engine import restart
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRules, FakeStore, FakeView, Rig, make_engine


class HalvingRules(FakeRules):
    """Enters 2 units of the 1-1-2; when `halve` is set, closes one unit and keeps the other."""

    def __init__(self) -> None:
        super().__init__("s1", units=2)
        self.halve = False
        self.seen: list[Dict[str, int]] = []  # what the position held each time the rules looked

    def adjustment(self, view: FakeView, position: PositionRecord) -> Optional[Reduce]:
        self.seen.append({c.symbol: c.quantity for c in position.contracts})
        return Reduce(1, "test: take half off") if self.halve else None


def entered(auto_fill: bool = True) -> Rig:
    rules = HalvingRules()
    broker = FakeBroker()
    broker.auto_fill = True
    rig = make_engine(FakeStore(), broker, rules)
    rig.engine.on_market(FakeView(now=T0))
    rules.want_entry = False
    broker.auto_fill = auto_fill
    return rig


def one_unit() -> Dict[str, int]:
    return {leg.symbol: leg.quantity for leg in STRUCTURE}


def test_a_reduce_closes_whole_units_and_keeps_the_rest_open_and_managed() -> None:
    rig = entered()
    rules = rig.rules
    assert isinstance(rules, HalvingRules)
    rules.halve = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    rules.halve = False
    snapshot = rig.engine.snapshot()
    (reduce,) = [g for g in snapshot.groups.values() if g.purpose is GroupPurpose.REDUCE]
    assert reduce.status is GroupStatus.FILLED
    assert rig.broker.held == one_unit(), "one of the two units is left"
    (position,) = snapshot.open_positions()
    assert position.status is PositionStatus.OPEN and snapshot.strategies["s1"].state is StrategyState.ACTIVE
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=2)))
    assert rules.seen[-1] == one_unit(), "the rules see what the position holds now"
    rules.want_exit = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=3)))
    assert rig.broker.held == {}, "the exit closes only what is left"
    closed = rig.engine.snapshot().positions[position.position_id]
    assert closed.status is PositionStatus.CLOSED and closed.realized_pnl is not None


def test_a_reduce_of_every_unit_is_an_exit() -> None:
    rig = entered()
    rules = rig.rules
    assert isinstance(rules, HalvingRules)
    rules.adjustment = lambda view, position: Reduce(5, "all of it")  # type: ignore[method-assign]
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    assert rig.broker.held == {}
    groups = rig.engine.snapshot().groups.values()
    assert not [g for g in groups if g.purpose is GroupPurpose.REDUCE]


def test_a_reduce_half_filled_at_a_crash_is_completed_after_the_restart_never_leaving_a_broken_unit() -> None:
    rig = entered(auto_fill=False)
    rules = rig.rules
    assert isinstance(rules, HalvingRules)
    rules.halve = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))
    rules.halve = False
    (reduce,) = [g for g in rig.engine.snapshot().groups.values() if g.purpose is GroupPurpose.REDUCE]
    first_leg = reduce.legs[0]
    rig.broker.fill(first_leg.order_ids[0], first_leg.quantity)  # one leg fills, then the process dies
    for order in list(rig.broker.orders.values()):
        order.open = False  # the rest was cancelled while down
    rig.broker.auto_fill = True
    new = restart(rig, "run2", keep_memory=True)
    for minute in (31, 32, 33):
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute)))
    assert new.broker.held == one_unit(), "the reduce was completed: one whole unit left, no broken leg"
    snapshot = new.engine.snapshot()
    (position,) = snapshot.open_positions()
    assert position.status is PositionStatus.OPEN
    # booked as what it was: the recovery child completes the reduce as a reduce, the records agree with the
    # broker without reconcile having to correct anything
    children = [g for g in snapshot.groups.values() if g.parent_group_id == reduce.group_id]
    assert children and all(g.purpose is GroupPurpose.REDUCE for g in children)
    assert position_holdings(position, snapshot.groups.values()) == new.broker.held
    kinds = {kind for kind, _, _ in new.store.audits}
    assert not kinds & {"quantity-mismatch", "adopted", "orphan-cleaned", "group-fill-mismatch"}, kinds


def test_an_entry_that_came_to_nothing_does_not_count_as_the_cycles_entry() -> None:
    """Refused by the broker (nothing filled): the strategy is WAITING again with no entry day, so its own
    once-a-day / once-a-cycle rule lets it try again inside its window; a filled entry keeps its day."""
    refused = make_engine(FakeStore(), FakeBroker(), FakeRules())
    refused.broker.refuse = True
    refused.engine.on_market(FakeView(now=T0))
    record = refused.engine.snapshot().strategies["s1"]
    assert record.state is StrategyState.WAITING and record.last_entry_day is None
    assert "came to nothing" in record.reason
    filled = entered()
    record = filled.engine.snapshot().strategies["s1"]
    assert record.state is StrategyState.ACTIVE and record.last_entry_day == T0.date()
