"""Log levels mean something: error = something is wrong (a refusal, with the broker's reason; a record the
broker contradicts); the normal steps of recovering from a crash mid-trade are info."""

from __future__ import annotations

from datetime import timedelta

from core.ports import EventStatus, OrderEventData
from tests.test_engine import restart
from tests.test_engine_support import T0, FakeBroker, FakeRules, FakeStore, FakeView, make_engine


def test_a_refused_entry_is_an_error_that_carries_the_brokers_reason() -> None:
    broker = FakeBroker()
    broker.refuse = True
    broker.refuse_reason = "Order Error: insufficient buying power to complete orders"
    rig = make_engine(FakeStore(), broker, FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    refusals = [message for message in rig.log.errors if "refused" in message]
    assert refusals, rig.log.errors
    assert all("insufficient buying power" in message for message in refusals)
    assert any(kind == "order-refused" and "insufficient buying power" in text for kind, text, _ in rig.store.audits)


def test_a_broker_reject_event_is_an_error_with_its_message() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    order = next(iter(rig.broker.orders.values()))
    order.open = False
    event = OrderEventData(
        order.order_id,
        9,
        order.symbol,
        EventStatus.INVALID,
        0,
        0.0,
        order.tag,
        T0,
        (order.broker_id,),
        message="rejected by the broker: contract halted",
    )
    rig.engine.on_order_event(event)
    refusals = [message for message in rig.log.errors if "refused" in message and order.symbol in message]
    assert refusals and "contract halted" in refusals[0], rig.log.errors


def test_fills_booked_from_holdings_after_a_crash_are_info_not_errors() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    rig.broker.engine = None  # down: the broker fills with no event
    for order in list(rig.broker.orders.values()):
        rig.broker.fill(order.order_id, order.quantity)
    new = restart(rig, "run2", minutes=10)
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=15)))
    assert any("missed-fill" in message for message in new.log.infos)
    assert not [message for message in new.log.errors if "missed-fill" in message], new.log.errors
    assert any(kind == "missed-fill" for kind, _, _ in new.store.audits)


def test_an_untracked_holding_is_still_an_error() -> None:
    broker = FakeBroker()
    broker.held = {"SPY-20240517-P-300": -3}
    rules = FakeRules()
    rules.want_entry = False
    rig = make_engine(FakeStore(), broker, rules)
    assert any("adopted" in message for message in rig.log.errors), rig.log.errors


def test_every_run_start_is_marked_in_the_audit_trail_before_its_recovery_steps() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.engine.on_market(FakeView(now=T0))
    rig.broker.engine = None
    for order in list(rig.broker.orders.values()):
        rig.broker.fill(order.order_id, order.quantity)
    new = restart(rig, "run2", minutes=10)
    kinds = [kind for kind, _, _ in new.store.audits]
    starts = [index for index, kind in enumerate(kinds) if kind == "run-start"]
    assert len(starts) == 1  # the fake store keeps audits per instance: this one is the restart's
    assert starts[0] < kinds.index("missed-fill")
    assert any("run2" in text for kind, text, _ in new.store.audits if kind == "run-start")
