"""Decisions on incomplete groups: a table of situations and the expected action."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from core.order_groups import apply_order_event, cancel_open_legs, mark_refused, new_group
from core.ports import EventStatus, LegSpec, OrderEventData
from core.records import GroupPurpose, GroupStatus, LegStatus, OrderGroupRecord, Right
from recovery.decisions import DecisionAction, decide_incomplete, recovery_group, recovery_legs, safe_order

NOW = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
LONG = LegSpec("SPY-20240517-P-440", "SPY", Right.PUT, 440.0, EXP, 1)
SHORT = LegSpec("SPY-20240517-P-430", "SPY", Right.PUT, 430.0, EXP, -1)
NAKED = LegSpec("SPY-20240517-P-400", "SPY", Right.PUT, 400.0, EXP, -2)
C, R, W = DecisionAction.COMPLETE, DecisionAction.ROLL_BACK, DecisionAction.WAIT


def incomplete(
    purpose: GroupPurpose, filled: list[LegSpec], legs: tuple[LegSpec, ...] = (LONG, SHORT, NAKED)
) -> OrderGroupRecord:
    """A group where `filled` legs filled and every other order died (cancelled)."""
    g = new_group("g1", "lt112", purpose, "p1", legs, NOW, "run1")
    for i, leg in enumerate(filled):
        event = OrderEventData(i, 1, leg.symbol, EventStatus.FILLED, leg.quantity, 2.0, "g1", NOW)
        g, applied = apply_order_event(g, event, "run1", NOW)
        assert applied
    return cancel_open_legs(g, NOW)


TABLE = [
    # purpose, filled legs, market_open, entries_allowed, expected
    (GroupPurpose.ENTRY, [LONG], True, True, C),
    (GroupPurpose.ENTRY, [SHORT, NAKED], True, True, C),  # buys the missing protection
    (GroupPurpose.ENTRY, [LONG], True, False, R),  # risk says no entries
    (GroupPurpose.ENTRY, [LONG], False, True, W),  # market closed
    (GroupPurpose.ENTRY, [LONG], False, False, W),
    (GroupPurpose.COMPLETION, [LONG], True, False, R),
    (GroupPurpose.COMPLETION, [SHORT], True, True, C),
    (GroupPurpose.EXIT, [LONG], True, False, C),  # closing reduces risk: always finish
    (GroupPurpose.EXIT, [SHORT], True, True, C),
    (GroupPurpose.EXIT, [SHORT], False, True, W),
    (GroupPurpose.ROLLBACK, [SHORT], True, False, C),
]


@pytest.mark.parametrize(("purpose", "filled", "market_open", "entries_allowed", "expected"), TABLE)
def test_decision_table(
    purpose: GroupPurpose,
    filled: list[LegSpec],
    market_open: bool,
    entries_allowed: bool,
    expected: DecisionAction,
) -> None:
    g = incomplete(purpose, filled)
    decision = decide_incomplete(g, market_open, entries_allowed, NOW)
    assert decision.action is expected
    assert decision.group_id == "g1" and decision.reason and decision.decided_at == NOW
    assert expected.value in decision.text and decision.reason in decision.text
    if expected is W:
        assert decision.legs == ()
    elif expected is C:
        assert sorted(leg.symbol for leg in decision.legs) == sorted(
            leg.symbol for leg in (LONG, SHORT, NAKED) if leg not in filled
        )
    else:
        assert {(leg.symbol, leg.quantity) for leg in decision.legs} == {(leg.symbol, -leg.quantity) for leg in filled}


def test_refused_protective_long_is_rolled_back_not_retried() -> None:
    g = new_group("g1", "lt112", GroupPurpose.ENTRY, "p1", (LONG, SHORT, NAKED), NOW, "run1")
    for i, leg in enumerate((SHORT, NAKED)):
        g, _ = apply_order_event(
            g, OrderEventData(i, 1, leg.symbol, EventStatus.FILLED, leg.quantity, 2.0, "g1", NOW), "run1", NOW
        )
    g = mark_refused(g, NOW, [LONG.symbol])
    assert g.legs[0].status is LegStatus.INVALID and g.status is GroupStatus.INCOMPLETE
    decision = decide_incomplete(g, True, True, NOW)
    assert decision.action is R and "naked" in decision.reason
    # buy back the shorts (positive quantities) only; nothing to sell
    assert [leg.quantity for leg in decision.legs] == [1, 2]


def test_expiring_pending_leg_is_rolled_back() -> None:
    g = incomplete(GroupPurpose.ENTRY, [LONG])
    decision = decide_incomplete(g, True, True, datetime(2024, 5, 17, 10, 0))
    assert decision.action is R and "expire" in decision.reason


def test_wait_while_a_leg_is_still_open() -> None:
    g = new_group("g1", "lt112", GroupPurpose.ENTRY, "p1", (LONG, SHORT), NOW, "run1")
    g, _ = apply_order_event(g, OrderEventData(1, 1, LONG.symbol, EventStatus.FILLED, 1, 2.0, "g1", NOW), "run1", NOW)
    decision = decide_incomplete(g, True, True, NOW)
    assert decision.action is W and SHORT.symbol in decision.reason


@pytest.mark.parametrize(
    "status", [GroupStatus.FILLED, GroupStatus.CANCELED, GroupStatus.PENDING, GroupStatus.RESOLVED]
)
def test_only_incomplete_groups_are_decided(status: GroupStatus) -> None:
    g = replace(incomplete(GroupPurpose.ENTRY, [LONG]), status=status)
    with pytest.raises(ValueError):
        decide_incomplete(g, True, True, NOW)


def test_rollback_buys_back_shorts_before_selling_longs() -> None:
    g = incomplete(GroupPurpose.ENTRY, [LONG, SHORT], (LONG, SHORT, NAKED))
    legs = recovery_legs(g, R)
    assert [(leg.symbol, leg.quantity) for leg in legs] == [(SHORT.symbol, 1), (LONG.symbol, -1)]
    assert recovery_legs(g, W) == ()


def test_completion_buys_protection_before_selling() -> None:
    g = incomplete(GroupPurpose.ENTRY, [NAKED], (SHORT, NAKED, LONG))
    assert [leg.quantity for leg in recovery_legs(g, C)] == [1, -1]
    assert [leg.quantity for leg in safe_order([SHORT, NAKED, LONG])] == [1, -1, -2]


@pytest.mark.parametrize(
    ("purpose", "entries_allowed", "expected_purpose"),
    [
        (GroupPurpose.ENTRY, True, GroupPurpose.COMPLETION),
        (GroupPurpose.ENTRY, False, GroupPurpose.ROLLBACK),
        (GroupPurpose.EXIT, False, GroupPurpose.EXIT),
        (GroupPurpose.ROLLBACK, True, GroupPurpose.ROLLBACK),
    ],
)
def test_recovery_group_is_written_ahead_with_parent(
    purpose: GroupPurpose, entries_allowed: bool, expected_purpose: GroupPurpose
) -> None:
    g = incomplete(purpose, [LONG])
    decision = decide_incomplete(g, True, entries_allowed, NOW)
    rg = recovery_group(g, decision, "g1-r1", NOW, "run2")
    assert rg.purpose is expected_purpose and rg.parent_group_id == "g1" and rg.status is GroupStatus.PENDING
    assert rg.position_id == g.position_id and rg.run_id == "run2"
    assert tuple((leg.symbol, leg.quantity) for leg in rg.legs) == tuple(
        (leg.symbol, leg.quantity) for leg in decision.legs
    )
    with pytest.raises(ValueError):
        recovery_group(g, replace(decision, action=W), "x", NOW, "run2")
