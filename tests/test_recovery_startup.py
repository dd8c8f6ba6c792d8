"""Start-up planning: what the engine is told to do for each kind of leftover."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from core.order_groups import apply_order_event, cancel_open_legs, mark_refused, mark_submitted, new_group
from core.ports import EventStatus, LegSpec, OrderEventData, SubmittedOrder
from core.records import (
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    Right,
    StrategyState,
    StrategyStateRecord,
)
from recovery.decisions import DecisionAction, family_rollback_legs
from recovery.startup import latest_descendant, plan_start

NOW = datetime(2024, 1, 3, 10, 0)
LATER = datetime(2024, 1, 3, 10, 5)
EXP = date(2024, 5, 17)
LONG = LegSpec("SPY-20240517-P-440", "SPY", Right.PUT, 440.0, EXP, 1)
SHORT = LegSpec("SPY-20240517-P-430", "SPY", Right.PUT, 430.0, EXP, -1)


def group(
    gid: str,
    purpose: GroupPurpose,
    legs: tuple[LegSpec, ...],
    filled: int,
    *,
    parent: str | None = None,
    at: datetime = NOW,
) -> OrderGroupRecord:
    g = new_group(gid, "lt112", purpose, "p1", legs, at, "run1", parent_group_id=parent)
    g = mark_submitted(g, [SubmittedOrder(leg.symbol, i) for i, leg in enumerate(legs)], at)
    for i, leg in enumerate(legs[:filled]):
        g, _ = apply_order_event(
            g, OrderEventData(i, 1, leg.symbol, EventStatus.FILLED, leg.quantity, 3.0 - i, gid, at), "run1", at
        )
    return g


def strategy(state: StrategyState, group_id: str | None) -> StrategyStateRecord:
    return StrategyStateRecord("lt112", state, None, NOW, "test", group_id=group_id, position_id="p1")


def test_clean_start_needs_nothing() -> None:
    p = plan_start({}, {}, {}, "run2", NOW, market_open=True, entries_allowed=True, orders_known=True)
    assert not p.needs_attention and p.final


def test_provisional_decision_in_initialize_treats_dead_run_orders_as_dead() -> None:
    g = group("g1", GroupPurpose.ENTRY, (LONG, SHORT), filled=1)  # SHORT still SUBMITTED in run1
    p = plan_start(
        {}, {"g1": g}, {}, "run2", NOW, market_open=True, entries_allowed=True, orders_known=False, lost=["position-p9"]
    )
    assert p.rebind == ("g1",) and p.lost == ("position-p9",) and not p.final
    (decision,) = p.decisions
    assert decision.action is DecisionAction.COMPLETE and [leg.symbol for leg in decision.legs] == [SHORT.symbol]
    # once orders are known, a leg that is still open means wait
    final = plan_start({}, {"g1": g}, {}, "run1", NOW, market_open=True, entries_allowed=True, orders_known=True)
    assert final.decisions[0].action is DecisionAction.WAIT


def test_filled_recovery_child_resolves_parent_and_builds_position() -> None:
    parent = group("g1", GroupPurpose.ENTRY, (LONG, SHORT), filled=1)
    parent = replace(parent, legs=(parent.legs[0], replace(parent.legs[1], status=parent.legs[1].status.CANCELED)))
    child = group("c1", GroupPurpose.COMPLETION, (SHORT,), filled=1, parent="g1", at=LATER)
    p = plan_start(
        {}, {"g1": parent, "c1": child}, {}, "run1", NOW, market_open=True, entries_allowed=True, orders_known=True
    )
    assert p.resolve_parents == ("g1",) and p.decisions == ()
    assert p.positions_to_build == ()  # the parent is still INCOMPLETE: resolve it first
    resolved = replace(parent, status=GroupStatus.RESOLVED)
    p = plan_start(
        {}, {"g1": resolved, "c1": child}, {}, "run1", NOW, market_open=True, entries_allowed=True, orders_known=True
    )
    (build,) = p.positions_to_build
    assert build.position_id == "p1" and build.entry_group_id == "g1"
    assert {(leg.symbol, leg.quantity) for leg in build.legs} == {(LONG.symbol, 1), (SHORT.symbol, -1)}
    assert build.entry_price == pytest.approx(3.0 - 3.0)  # bought at 3.0, completion sold at 3.0


def test_rolled_back_entry_builds_nothing_and_frees_the_strategy() -> None:
    parent = replace(group("g1", GroupPurpose.ENTRY, (LONG, SHORT), filled=1), status=GroupStatus.RESOLVED)
    rollback = group("r1", GroupPurpose.ROLLBACK, (replace(LONG, quantity=-1),), filled=1, parent="g1", at=LATER)
    groups = {"g1": parent, "r1": rollback}
    p = plan_start(
        {"lt112": strategy(StrategyState.ENTERING, "g1")},
        groups,
        {},
        "run1",
        NOW,
        market_open=True,
        entries_allowed=True,
        orders_known=True,
    )
    assert p.positions_to_build == ()
    (stuck,) = p.stuck
    assert stuck.group_id == "r1" and stuck.suggested is StrategyState.WAITING
    assert latest_descendant("g1", groups) == rollback


@pytest.mark.parametrize(
    ("state", "purpose", "filled", "suggested"),
    [
        (StrategyState.ENTERING, GroupPurpose.ENTRY, 2, StrategyState.ACTIVE),
        (StrategyState.ENTERING, GroupPurpose.ENTRY, 0, StrategyState.WAITING),
        (StrategyState.EXITING, GroupPurpose.EXIT, 2, StrategyState.CLOSED),
        (StrategyState.EXITING, GroupPurpose.EXIT, 0, StrategyState.ACTIVE),
    ],
)
def test_stuck_strategies_get_a_suggestion(
    state: StrategyState, purpose: GroupPurpose, filled: int, suggested: StrategyState
) -> None:
    g = group("g1", purpose, (LONG, SHORT), filled=filled)
    if filled == 0:
        g = replace(g, status=GroupStatus.CANCELED)
    p = plan_start(
        {"lt112": strategy(state, "g1")},
        {"g1": g},
        {},
        "run1",
        NOW,
        market_open=True,
        entries_allowed=True,
        orders_known=True,
    )
    (stuck,) = p.stuck
    assert stuck.suggested is suggested and stuck.reason


def test_missing_group_means_recovering_and_moving_group_is_not_stuck() -> None:
    p = plan_start(
        {
            "a": strategy(StrategyState.EXITING, "gone"),
            "b": replace(strategy(StrategyState.ENTERING, "g1"), strategy_id="b"),
        },
        {"g1": group("g1", GroupPurpose.ENTRY, (LONG, SHORT), filled=0)},
        {},
        "run1",
        NOW,
        market_open=True,
        entries_allowed=True,
        orders_known=True,
    )
    assert [(s.strategy_id, s.suggested) for s in p.stuck] == [("a", StrategyState.RECOVERING)]


def test_filled_exit_with_open_position_is_listed_to_close() -> None:
    exit_group = group("x1", GroupPurpose.EXIT, (replace(LONG, quantity=-1),), filled=1)
    position = PositionRecord(
        "p1",
        "lt112",
        "g1",
        NOW,
        -1.0,
        (ContractRecord(LONG.symbol, Right.PUT, 440.0, EXP, 1),),
        EXP,
        (440.0,),
        None,
        1.0,
        1.0,
        "h",
    )
    p = plan_start(
        {}, {"x1": exit_group}, {"p1": position}, "run1", NOW, market_open=True, entries_allowed=True, orders_known=True
    )
    assert p.positions_to_close == ("p1",) and p.positions_to_build == ()


def test_a_long_refused_on_the_completion_child_rolls_the_family_back() -> None:
    """The entry's long was only cancelled; the broker refused it on the completion child. Deciding the entry
    again must roll the family back (buying the shorts back), not send the same refused buy once more."""
    naked = LegSpec("SPY-20240517-P-400", "SPY", Right.PUT, 400.0, EXP, -2)
    legs = (LONG, SHORT, naked)
    entry = new_group("p1-entry", "lt112", GroupPurpose.ENTRY, "p1", legs, NOW, "run1")
    entry = mark_submitted(entry, [SubmittedOrder(leg.symbol, i) for i, leg in enumerate(legs)], NOW)
    for i, leg in enumerate(legs[1:], start=1):  # the shorts fill, the long is cancelled
        event = OrderEventData(i, 2, leg.symbol, EventStatus.FILLED, leg.quantity, 2.0, "p1-entry", NOW)
        entry, _ = apply_order_event(entry, event, "run1", NOW)
    entry = cancel_open_legs(entry, NOW)
    child = new_group("p1-rec1", "lt112", GroupPurpose.COMPLETION, "p1", (LONG,), LATER, "run1", "p1-entry")
    groups = {entry.group_id: entry, child.group_id: mark_refused(child, LATER)}
    plan = plan_start({}, groups, {}, "run1", LATER, market_open=True, entries_allowed=True, orders_known=True)
    (decision,) = plan.decisions
    assert decision.group_id == "p1-entry" and decision.action is DecisionAction.ROLL_BACK
    assert LONG.symbol in decision.reason
    rollback = family_rollback_legs(entry, groups)
    assert [(leg.symbol, leg.quantity) for leg in rollback] == [(SHORT.symbol, 1), (naked.symbol, 2)]
