"""Order groups: example tests for each transition the engine relies on."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.order_groups import (
    EventOutcome,
    adopt_run,
    apply_holdings_fill,
    apply_order_event,
    cancel_open_legs,
    classify_event,
    combo_legs,
    filled_legs,
    find_group_for_event,
    is_done,
    is_incomplete,
    mark_refused,
    mark_resolved,
    mark_submitted,
    net_fill_price,
    new_group,
    pending_legs,
    set_leg_fill,
)
from core.ports import EventStatus, LegSpec, OrderEventData, SubmittedOrder
from core.records import GroupPurpose, GroupStatus, LegStatus, OrderGroupRecord, Right

NOW = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
RUN = "run1"


def spec(strike: float, qty: int) -> LegSpec:
    return LegSpec(f"SPY-20240517-P-{strike:g}", "SPY", Right.PUT, strike, EXP, qty)


LT112 = [spec(440, 2), spec(430, -2), spec(400, -4)]  # 2 units of the 1-1-2


def g1() -> OrderGroupRecord:
    return new_group("g1", "lt112", GroupPurpose.ENTRY, "p1", LT112, NOW, RUN)


def ev(  # noqa: PLR0917 (short test helper)
    symbol: str,
    status: EventStatus,
    qty: int = 0,
    price: float = 0.0,
    order_id: int = 1,
    event_id: int = 1,
    tag: str = "g1",
) -> OrderEventData:
    return OrderEventData(order_id, event_id, symbol, status, qty, price, tag, NOW)


SYM = [leg.symbol for leg in LT112]


def test_new_group_is_written_ahead_pending() -> None:
    g = g1()
    assert g.status is GroupStatus.PENDING
    assert all(leg.status is LegStatus.PENDING and leg.filled_quantity == 0 for leg in g.legs)
    assert [leg.quantity for leg in g.legs] == [2, -2, -4]


@pytest.mark.parametrize(
    "legs",
    [[], [spec(440, 1), spec(440, -1)], [spec(440, 0)]],
    ids=["no legs", "same contract twice", "zero quantity"],
)
def test_new_group_refuses_bad_legs(legs: list[LegSpec]) -> None:
    with pytest.raises(ValueError):
        new_group("g", "s", GroupPurpose.ENTRY, "p", legs, NOW, RUN)


def test_combo_fills_before_submit_returns_then_mark_submitted_keeps_filled() -> None:
    g = g1()
    for i, (sym, qty, price) in enumerate(zip(SYM, [2, -2, -4], [10.0, 8.0, 3.0], strict=True)):
        g, applied = apply_order_event(g, ev(sym, EventStatus.FILLED, qty, price, order_id=i + 1), RUN, NOW)
        assert applied
    assert g.status is GroupStatus.FILLED
    g = mark_submitted(g, [SubmittedOrder(s, i + 1) for i, s in enumerate(SYM)], NOW)
    assert g.status is GroupStatus.FILLED
    assert all(leg.status is LegStatus.FILLED and leg.order_ids == (i + 1,) for i, leg in enumerate(g.legs))
    # 2*10 - 2*8 - 4*3 = -8 over 2 units = -4 per unit (a credit)
    assert net_fill_price(g) == pytest.approx(-4.0)
    assert is_done(g)


def test_mark_submitted_empty_means_refused() -> None:
    g = mark_submitted(g1(), [], NOW)
    assert g.status is GroupStatus.FAILED
    assert all(leg.status is LegStatus.INVALID for leg in g.legs)


def test_partial_fills_weighted_average_and_incomplete() -> None:
    g = mark_submitted(g1(), [SubmittedOrder(s, i + 1) for i, s in enumerate(SYM)], NOW)
    assert g.status is GroupStatus.SUBMITTED
    g, _ = apply_order_event(g, ev(SYM[0], EventStatus.PARTIALLY_FILLED, 1, 10.0, 1, 1), RUN, NOW)
    g, _ = apply_order_event(g, ev(SYM[0], EventStatus.FILLED, 1, 12.0, 1, 2), RUN, NOW)
    assert g.legs[0].filled_quantity == 2
    assert g.legs[0].avg_fill_price == pytest.approx(11.0)
    assert g.legs[0].status is LegStatus.FILLED
    assert is_incomplete(g)
    assert [leg.quantity for leg in pending_legs(g)] == [-2, -4]
    assert [leg.quantity for leg in filled_legs(g)] == [2]


def test_duplicate_and_excess_fills_never_count_twice() -> None:
    g = g1()
    e = ev(SYM[1], EventStatus.FILLED, -2, 8.0)
    g, first = apply_order_event(g, e, RUN, NOW)
    g2, again = apply_order_event(g, e, RUN, NOW)
    assert first and not again and g2 == g
    assert classify_event(g, e, RUN) is EventOutcome.DUPLICATE
    bogus = ev(SYM[1], EventStatus.FILLED, -5, 8.0, event_id=9)
    assert apply_order_event(g, bogus, RUN, NOW) == (g, False)
    assert classify_event(g, bogus, RUN) is EventOutcome.EXCESS
    wrong_sign = ev(SYM[2], EventStatus.FILLED, 3, 1.0, order_id=3)
    assert apply_order_event(g, wrong_sign, RUN, NOW) == (g, False)


def test_overshooting_fill_is_clamped() -> None:
    g, applied = apply_order_event(g1(), ev(SYM[2], EventStatus.FILLED, -7, 3.0, order_id=3), RUN, NOW)
    assert applied and g.legs[2].filled_quantity == -4 and g.legs[2].status is LegStatus.FILLED


def test_unknown_symbol_not_applied() -> None:
    g = g1()
    assert apply_order_event(g, ev("QQQ-20240517-P-300", EventStatus.FILLED, 1, 1.0), RUN, NOW) == (g, False)


def test_out_of_order_submitted_after_filled_changes_nothing() -> None:
    g, _ = apply_order_event(g1(), ev(SYM[0], EventStatus.FILLED, 2, 10.0), RUN, NOW)
    g2, applied = apply_order_event(g, ev(SYM[0], EventStatus.SUBMITTED, event_id=0), RUN, NOW)
    assert not applied and g2.legs[0].status is LegStatus.FILLED


def test_cancel_everything_nothing_filled_is_canceled() -> None:
    g = mark_submitted(g1(), [SubmittedOrder(s, i + 1) for i, s in enumerate(SYM)], NOW)
    for i, s in enumerate(SYM):
        g, _ = apply_order_event(g, ev(s, EventStatus.CANCELED, order_id=i + 1, event_id=5), RUN, NOW)
    assert g.status is GroupStatus.CANCELED and is_done(g)


def test_cancel_after_partial_is_incomplete_with_dead_rest() -> None:
    g, _ = apply_order_event(g1(), ev(SYM[0], EventStatus.FILLED, 2, 10.0, order_id=1), RUN, NOW)
    g, _ = apply_order_event(g, ev(SYM[1], EventStatus.CANCELED, order_id=2), RUN, NOW)
    g, _ = apply_order_event(g, ev(SYM[2], EventStatus.INVALID, order_id=3), RUN, NOW)
    assert g.status is GroupStatus.INCOMPLETE
    assert [leg.status for leg in g.legs] == [LegStatus.FILLED, LegStatus.CANCELED, LegStatus.INVALID]
    resolved = mark_resolved(g, NOW, "rolled back by g1-rb")
    assert resolved.status is GroupStatus.RESOLVED and resolved.decision == "rolled back by g1-rb"


def test_event_from_new_run_rebinds_group_and_keys_by_run() -> None:
    g = mark_submitted(g1(), [SubmittedOrder(s, i + 1) for i, s in enumerate(SYM)], NOW)
    g, _ = apply_order_event(g, ev(SYM[2], EventStatus.PARTIALLY_FILLED, -1, 3.0, order_id=3), RUN, NOW)
    # after a restart the same (order_id, event_id) pair is a different event
    g, applied = apply_order_event(g, ev(SYM[2], EventStatus.PARTIALLY_FILLED, -1, 3.0, order_id=3), "run2", NOW)
    assert applied and g.run_id == "run2" and g.legs[2].filled_quantity == -2
    assert g.legs[0].order_ids == () and g.legs[2].order_ids == (3,)


def test_holdings_fill_clamps_and_keeps_price() -> None:
    g, _ = apply_order_event(g1(), ev(SYM[2], EventStatus.PARTIALLY_FILLED, -1, 3.0, order_id=3), RUN, NOW)
    g = apply_holdings_fill(g, SYM[2], -10, NOW)
    assert g.legs[2].filled_quantity == -4 and g.legs[2].avg_fill_price == 3.0
    assert apply_holdings_fill(g, "nope", 1, NOW) == g


def test_adopt_run_cancels_legs_whose_orders_died() -> None:
    g = mark_submitted(g1(), [SubmittedOrder(s, i + 1, (f"B{i}",)) for i, s in enumerate(SYM)], NOW)
    g = adopt_run(g, "run2", [SubmittedOrder(SYM[0], 77, ("B0",))], NOW)
    assert g.run_id == "run2"
    assert g.legs[0].order_ids == (77,) and g.legs[0].status is LegStatus.SUBMITTED
    assert [leg.status for leg in g.legs[1:]] == [LegStatus.CANCELED, LegStatus.CANCELED]
    assert g.status is GroupStatus.SUBMITTED  # one leg still working
    assert cancel_open_legs(g, NOW).status is GroupStatus.CANCELED


def test_mark_refused_only_named_legs() -> None:
    g = mark_refused(g1(), NOW, [SYM[0]])
    assert [leg.status for leg in g.legs] == [LegStatus.INVALID, LegStatus.PENDING, LegStatus.PENDING]


def test_set_leg_fill_follows_holdings_down() -> None:
    g, _ = apply_order_event(g1(), ev(SYM[0], EventStatus.FILLED, 2, 10.0), RUN, NOW)
    g = set_leg_fill(g, SYM[0], 1, NOW)
    assert g.legs[0].filled_quantity == 1 and g.legs[0].status is LegStatus.CANCELED


def test_combo_legs_per_unit() -> None:
    legs, units = combo_legs(g1())
    assert units == 2 and [leg.quantity for leg in legs] == [1, -1, -2]


def test_find_group_by_tag_then_order_id() -> None:
    g = mark_submitted(g1(), [SubmittedOrder(s, i + 1) for i, s in enumerate(SYM)], NOW)
    groups = {"g1": g}
    assert find_group_for_event(groups, ev(SYM[0], EventStatus.FILLED, 1, tag="g1"), RUN) is g
    assert find_group_for_event(groups, ev(SYM[0], EventStatus.FILLED, 1, order_id=2, tag=""), RUN) is g
    assert find_group_for_event(groups, ev(SYM[0], EventStatus.FILLED, 1, order_id=2, tag=""), "run2") is None
