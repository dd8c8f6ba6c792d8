"""Property tests: random event sequences (fills, partial fills, repeats, cancels, late SUBMITTED, restarts with
a new run id, fills seen only in holdings) against a plain reference model of what must have been counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from core.order_groups import (
    adopt_run,
    apply_holdings_fill,
    apply_order_event,
    mark_submitted,
    new_group,
)
from core.ports import EventStatus, LegSpec, OrderEventData, SubmittedOrder
from core.records import GroupPurpose, GroupStatus, LegStatus, OrderGroupRecord, Right

NOW = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
PROFILE = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Fill:
    leg: int
    quantity: int  # magnitude; the sign comes from `wrong_sign`
    wrong_sign: bool
    event_id: int
    partial: bool


@dataclass(frozen=True)
class Status:
    leg: int
    status: EventStatus
    event_id: int


@dataclass(frozen=True)
class Restart:
    pass


@dataclass(frozen=True)
class Submit:
    pass


@dataclass(frozen=True)
class HoldingsFill:
    leg: int
    quantity: int


Op = Fill | Status | Restart | Submit | HoldingsFill

leg_sizes = st.lists(st.integers(1, 4), min_size=1, max_size=4)
signs = st.lists(st.booleans(), min_size=4, max_size=4)


def ops(n_legs: int) -> st.SearchStrategy[list[Op]]:
    leg = st.integers(0, n_legs - 1)
    op: st.SearchStrategy[Op] = st.one_of(
        st.builds(
            Fill, leg, st.integers(1, 5), st.sampled_from([False, False, False, True]), st.integers(1, 4), st.booleans()
        ),
        st.builds(
            Status,
            leg,
            st.sampled_from([EventStatus.SUBMITTED, EventStatus.NEW, EventStatus.CANCELED, EventStatus.INVALID]),
            st.integers(1, 4),
        ),
        st.just(Restart()),
        st.just(Submit()),
        st.builds(HoldingsFill, leg, st.integers(-3, 3)),
    )
    return st.lists(op, max_size=25)


def build(sizes: list[int], shorts: list[bool]) -> OrderGroupRecord:
    legs = [
        LegSpec(f"SPY-20240517-P-{400 + i}", "SPY", Right.PUT, 400.0 + i, EXP, -q if shorts[i] else q)
        for i, q in enumerate(sizes)
    ]
    return new_group("g", "s", GroupPurpose.ENTRY, "p", legs, NOW, "run0")


def check_invariants(g: OrderGroupRecord) -> None:
    for leg in g.legs:
        assert abs(leg.filled_quantity) <= abs(leg.quantity)
        assert leg.filled_quantity == 0 or (leg.filled_quantity > 0) == (leg.quantity > 0)
        assert (leg.status is LegStatus.FILLED) == (leg.filled_quantity == leg.quantity)
        assert len(leg.fill_keys) == len(set(leg.fill_keys))
    filled = [leg.filled_quantity == leg.quantity for leg in g.legs]
    some = any(leg.filled_quantity != 0 for leg in g.legs)
    open_ = any(leg.status in (LegStatus.PENDING, LegStatus.SUBMITTED, LegStatus.PARTIALLY_FILLED) for leg in g.legs)
    if all(filled):
        assert g.status is GroupStatus.FILLED
    elif some:
        assert g.status is GroupStatus.INCOMPLETE
    elif open_:
        assert g.status in (GroupStatus.PENDING, GroupStatus.SUBMITTED)
    else:
        assert g.status in (GroupStatus.CANCELED, GroupStatus.FAILED)


@PROFILE
@given(data=st.data(), sizes=leg_sizes, shorts=signs)
def test_random_event_sequences_keep_fills_bounded_and_status_consistent(
    data: st.DataObject, sizes: list[int], shorts: list[bool]
) -> None:
    g = build(sizes, shorts)
    run_no = 0
    expected = [0] * len(sizes)  # reference model: clamped sum of distinct fills
    seen: set[tuple[int, str, int, int]] = set()
    applied_events: list[OrderEventData] = []
    for op in data.draw(ops(len(sizes))):
        run = f"run{run_no}"
        if isinstance(op, Restart):
            run_no += 1
            g = adopt_run(g, f"run{run_no}", [], NOW)
        elif isinstance(op, Submit):
            g = mark_submitted(g, [SubmittedOrder(leg.symbol, 10 * run_no + i) for i, leg in enumerate(g.legs)], NOW)
        elif isinstance(op, HoldingsFill):
            leg = g.legs[op.leg]
            remaining = leg.quantity - expected[op.leg]
            if op.quantity and remaining and (op.quantity > 0) == (remaining > 0):
                expected[op.leg] += op.quantity if abs(op.quantity) <= abs(remaining) else remaining
            g = apply_holdings_fill(g, leg.symbol, op.quantity, NOW)
        else:
            leg = g.legs[op.leg]
            order_id = 10 * run_no + op.leg
            if isinstance(op, Fill):
                sign = 1 if leg.quantity > 0 else -1
                qty = -sign * op.quantity if op.wrong_sign else sign * op.quantity
                status = EventStatus.PARTIALLY_FILLED if op.partial else EventStatus.FILLED
                event = OrderEventData(order_id, op.event_id, leg.symbol, status, qty, 1.0 + op.leg, "g", NOW)
                key = (op.leg, run, order_id, op.event_id)
                remaining = leg.quantity - expected[op.leg]
                if key not in seen and remaining and (qty > 0) == (remaining > 0):
                    seen.add(key)
                    expected[op.leg] += qty if abs(qty) <= abs(remaining) else remaining
            else:
                event = OrderEventData(order_id, op.event_id, leg.symbol, op.status, 0, 0.0, "g", NOW)
            before = g
            g, applied = apply_order_event(g, event, run, NOW)
            if not applied:
                assert g == before
            else:
                applied_events.append(event)
                # the same event again (same run) is never counted twice
                again, twice = apply_order_event(g, event, run, NOW)
                assert not twice and again == g
        check_invariants(g)
        assert [leg.filled_quantity for leg in g.legs] == expected
    note_event(f"final status {g.status.value}")


@PROFILE
@given(sizes=leg_sizes, shorts=signs, repeats=st.integers(2, 6))
def test_replaying_a_whole_fill_history_changes_nothing(sizes: list[int], shorts: list[bool], repeats: int) -> None:
    g = build(sizes, shorts)
    events = [
        OrderEventData(i, 1, leg.symbol, EventStatus.FILLED, leg.quantity, 2.0, "g", NOW)
        for i, leg in enumerate(g.legs)
    ]
    for event in events:
        g, _ = apply_order_event(g, event, "run0", NOW)
    assert g.status is GroupStatus.FILLED
    replayed = g
    for _ in range(repeats):
        for event in reversed(events):
            replayed, applied = apply_order_event(replayed, event, "run0", NOW)
            assert not applied
    assert replayed == g
