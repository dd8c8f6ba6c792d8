"""Reconcile: one example per action, as the restart scenarios produce them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from core.contracts import parse_contract_key
from core.order_groups import apply_order_event, mark_submitted, new_group
from core.ports import EventStatus, LegSpec, OrderEventData, SubmittedOrder
from core.records import (
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
)
from recovery.reconcile import (
    ADOPTED_NOTE,
    GroupFillMismatch,
    MissedFill,
    OrphanCleaned,
    QuantityMismatch,
    UnknownHolding,
    UntrackedAdopted,
    apply_report,
    reconcile,
)

NOW = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
LONG = LegSpec("SPY-20240517-P-440", "SPY", Right.PUT, 440.0, EXP, 1)
SHORT = LegSpec("SPY-20240517-P-430", "SPY", Right.PUT, 430.0, EXP, -1)
NAKED = LegSpec("SPY-20240517-P-402.5", "SPY", Right.PUT, 402.5, EXP, -2)


def position(pid: str, *legs: LegSpec, status: PositionStatus = PositionStatus.OPEN) -> PositionRecord:
    contracts = tuple(ContractRecord(leg.symbol, leg.right, leg.strike, leg.expiry, leg.quantity) for leg in legs)
    return PositionRecord(pid, "lt112", f"g-{pid}", NOW, -3.0, contracts, EXP, (), 18.0, 100.0, 300.0, "h", status)


def group(gid: str, purpose: GroupPurpose, pid: str, *legs: LegSpec, filled: int = 0) -> OrderGroupRecord:
    """A submitted group whose first `filled` legs filled."""
    g = mark_submitted(
        new_group(gid, "lt112", purpose, pid, legs, NOW, "run1"),
        [SubmittedOrder(leg.symbol, i) for i, leg in enumerate(legs)],
        NOW,
    )
    for i, leg in enumerate(legs[:filled]):
        g, _ = apply_order_event(
            g, OrderEventData(i, 1, leg.symbol, EventStatus.FILLED, leg.quantity, 2.0, gid, NOW), "run1", NOW
        )
    return g


def held(*legs: LegSpec) -> dict[str, int]:
    return {leg.symbol: leg.quantity for leg in legs}


def test_everything_matches() -> None:
    report = reconcile({"p1": position("p1", LONG, SHORT, NAKED)}, {}, held(LONG, SHORT, NAKED))
    assert report.clean and report.actions == ()


def test_orphan_position_is_closed_and_kept() -> None:
    positions = {"p1": position("p1", LONG, SHORT)}
    report = reconcile(positions, {}, {})
    assert report.actions == (OrphanCleaned("p1"),)
    result = apply_report(positions, {}, report, NOW)
    closed = result.positions["p1"]
    assert closed.status is PositionStatus.CLOSED and closed.exit_time == NOW and "orphan" in closed.note
    assert result.changed_positions == ("p1",) and result.audit[0].kind == "orphan-cleaned"


def test_untracked_contract_is_adopted_into_a_recovery_position() -> None:
    report = reconcile({}, {}, {NAKED.symbol: -2})
    (action,) = report.actions
    assert isinstance(action, UntrackedAdopted)
    assert action.position_id == "adopted-SPY-20240517-P-402_5" and action.quantity == -2 and action.strike == 402.5
    result = apply_report({}, {}, report, NOW)
    adopted = result.positions[action.position_id]
    assert adopted.note == ADOPTED_NOTE and adopted.status is PositionStatus.OPEN
    assert adopted.contracts[0].quantity == -2 and adopted.entry_time == NOW
    assert reconcile(result.positions, result.groups, {NAKED.symbol: -2}).actions == ()


def test_quantity_mismatch_adjusts_the_record() -> None:
    positions = {"p1": position("p1", LONG, SHORT, NAKED)}
    report = reconcile(positions, {}, {**held(LONG, SHORT), NAKED.symbol: -1})
    assert report.actions == (QuantityMismatch("p1", NAKED.symbol, -2, -1),)
    result = apply_report(positions, {}, report, NOW)
    assert [c.quantity for c in result.positions["p1"].contracts] == [1, -1, -1]
    assert "quantity mismatch" in result.positions["p1"].note


def test_fill_while_down_is_a_missed_fill_of_the_open_group() -> None:
    groups = {"g1": group("g1", GroupPurpose.ENTRY, "p1", LONG, SHORT, NAKED, filled=1)}
    report = reconcile({}, groups, held(LONG, SHORT, NAKED))
    assert report.actions == (MissedFill("g1", NAKED.symbol, -2), MissedFill("g1", SHORT.symbol, -1))
    result = apply_report({}, groups, report, NOW)
    assert result.groups["g1"].status is GroupStatus.FILLED and result.changed_groups == ("g1",)


def test_exit_filled_while_down_completes_the_exit_not_an_orphan() -> None:
    positions = {"p1": position("p1", LONG, SHORT)}
    exit_legs = (
        LegSpec(LONG.symbol, "SPY", Right.PUT, 440.0, EXP, -1),
        LegSpec(SHORT.symbol, "SPY", Right.PUT, 430.0, EXP, 1),
    )
    groups = {"x1": group("x1", GroupPurpose.EXIT, "p1", *exit_legs)}
    report = reconcile(positions, groups, {})
    assert all(isinstance(a, MissedFill) for a in report.actions) and len(report.actions) == 2
    result = apply_report(positions, groups, report, NOW)
    assert result.groups["x1"].status is GroupStatus.FILLED
    assert result.positions["p1"].status is PositionStatus.OPEN  # the engine closes it as for any filled exit


def test_recorded_fill_not_in_holdings_is_lowered() -> None:
    groups = {"g1": group("g1", GroupPurpose.ENTRY, "p1", LONG, SHORT, filled=2)}
    report = reconcile({}, groups, {LONG.symbol: 1})
    assert report.actions == (GroupFillMismatch("g1", SHORT.symbol, -1, 0),)
    result = apply_report({}, groups, report, NOW)
    assert result.groups["g1"].status is GroupStatus.INCOMPLETE


def test_lost_position_of_a_resolved_entry_stays_claimed_by_its_groups() -> None:
    # the entry was completed by c1, then the position record was lost: the groups still account for it all
    g = replace(group("g1", GroupPurpose.ENTRY, "p1", LONG, SHORT, NAKED, filled=2), status=GroupStatus.RESOLVED)
    c = group("c1", GroupPurpose.COMPLETION, "p1", NAKED, filled=1)
    report = reconcile({}, {"g1": g, "c1": c}, held(LONG, SHORT, NAKED))
    assert report.actions == ()


def test_adopted_id_skips_a_closed_adopted_position() -> None:
    closed = position("adopted-SPY-20240517-P-440", LONG, status=PositionStatus.CLOSED)
    report = reconcile({closed.position_id: closed}, {}, held(LONG))
    (action,) = report.actions
    assert isinstance(action, UntrackedAdopted) and action.position_id == "adopted-SPY-20240517-P-440-2"


def test_unknown_holding_is_reported_not_touched() -> None:
    report = reconcile({}, {}, {"SPY-not-a-contract": 100})
    assert report.actions == (UnknownHolding("SPY-not-a-contract", 100),) and report.clean
    assert apply_report({}, {}, report, NOW).positions == {}


def test_shares_of_the_underlying_nobody_claims_are_adopted() -> None:
    """Shares an exercise delivered while nobody could book it: managed like any untracked holding."""
    report = reconcile({}, {}, {"SPY": 100})
    (action,) = report.actions
    assert isinstance(action, UntrackedAdopted) and action.symbol == "SPY" and action.quantity == 100
    (adopted,) = apply_report({}, {}, report, NOW).positions.values()
    assert [(c.symbol, c.quantity) for c in adopted.contracts] == [("SPY", 100)]


def test_parse_contract_key() -> None:
    assert parse_contract_key("BRK-B-20240517-C-402.5") == ("BRK-B", EXP, Right.CALL, 402.5)
    assert parse_contract_key("SPY") is None and parse_contract_key("SPY-2024-X-1") is None
