"""Recovery gives up on orders the broker keeps refusing: the exposure becomes a NEEDS ATTENTION position that is
persisted, still managed (exit rules, CLOSE_ALL), alerted, and not decided again blindly at a restart."""

from __future__ import annotations

from datetime import timedelta

from core.records import GroupStatus, PositionRecord, StrategyState
from tests.test_engine import restart, state
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRules, FakeStore, FakeView, Rig, make_engine


def gave_up_entry() -> Rig:
    """An entry whose shorts filled and whose long died; then the broker refuses everything."""
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    rig.rules.want_entry = False
    rig.broker.refuse = True
    for order in sorted(rig.broker.orders.values(), key=lambda o: o.order_id):
        if order.quantity < 0:
            rig.broker.fill(order.order_id, order.quantity)
    long_order = next(o for o in rig.broker.orders.values() if o.quantity > 0)
    rig.broker.cancel(long_order.order_id)  # the entry is INCOMPLETE now: completion, rollbacks, all refused
    return rig


def attention_position(rig: Rig) -> PositionRecord:
    (position,) = rig.engine.snapshot().open_positions("s1")
    return position


def test_giving_up_builds_a_persisted_needs_attention_position_of_the_strategy() -> None:
    rig = gave_up_entry()
    shorts = {leg.symbol: leg.quantity for leg in STRUCTURE if leg.quantity < 0}
    assert rig.broker.held == shorts
    refused_recoveries = [tag for tag, _ in rig.broker.submitted if "-rec" in tag]
    assert len(set(refused_recoveries)) == 3  # MAX_RECOVERY_ATTEMPTS, then no more
    position = attention_position(rig)
    assert {c.symbol: c.quantity for c in position.contracts} == shorts
    assert position.attention.startswith("NEEDS ATTENTION")
    assert rig.store.memory[position.record_name] == position  # persisted at once
    assert state(rig) is StrategyState.ACTIVE  # not ERROR: the strategy still manages it
    assert any(kind == "needs-attention" for kind, _, _ in rig.store.audits)
    assert any("NEEDS ATTENTION" in message for message in rig.log.errors)
    groups = rig.engine.snapshot().groups.values()
    assert not [g for g in groups if g.status is GroupStatus.INCOMPLETE]


def test_a_restart_keeps_the_attention_and_sends_no_refused_order_again() -> None:
    rig = gave_up_entry()
    before = list(rig.broker.submitted)
    new = restart(rig, "run2")
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=31)))
    assert new.broker.submitted == before  # nothing decided again, nothing resent
    assert attention_position(new).attention.startswith("NEEDS ATTENTION")
    assert state(new) is StrategyState.ACTIVE


def test_close_all_and_exit_rules_reach_it_with_one_attempt_a_day() -> None:
    rig = gave_up_entry()
    risk = rig.engine._risk
    assert risk is not None
    risk.close_all = True  # type: ignore[attr-defined]
    sent = len(rig.broker.submitted)
    for minute in range(1, 6):  # the broker still refuses: one exit attempt today, not one a minute
        rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute)))
    exits = [tag for tag, _ in rig.broker.submitted[sent:] if "-exit" in tag]
    assert len(exits) == 1
    rig.broker.refuse = False
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(days=1)))  # the next day: tried again, and it fills
    assert rig.broker.held == {} and rig.engine.snapshot().open_positions() == ()


def test_an_exit_given_up_half_way_reopens_the_position_and_the_next_exit_closes_only_the_rest() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))
    rig.broker.auto_fill = False
    rig.rules.want_entry = False
    held_before = dict(rig.broker.held)
    rig.rules.want_exit = True
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1)))  # the exit combo goes out
    exit_orders = [o for o in rig.broker.orders.values() if "-exit" in o.tag and o.open]
    assert len(exit_orders) == len(STRUCTURE)
    first, *others = sorted(exit_orders, key=lambda o: o.quantity, reverse=True)  # a buy-back fills
    rig.broker.refuse = True
    rig.broker.fill(first.order_id, first.quantity)
    for order in others:
        rig.broker.cancel(order.order_id)  # the rest dies: recovery completes the exit, and is refused 3 times
    position = attention_position(rig)
    assert position.attention.startswith("NEEDS ATTENTION")
    assert position.status.value == "OPEN"
    closed_part = {first.symbol: first.quantity}
    rig.broker.refuse = False
    rig.broker.auto_fill = True
    sent = len(rig.broker.submitted)
    rig.engine.on_market(FakeView(now=T0 + timedelta(days=1)))
    (tag, legs), *_ = rig.broker.submitted[sent:]
    assert "-exit" in tag and first.symbol not in {symbol for symbol, _ in legs}  # only the rest
    assert rig.broker.held == {} and rig.engine.snapshot().open_positions() == ()
    assert held_before[first.symbol] == -closed_part[first.symbol]
