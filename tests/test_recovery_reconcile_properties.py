"""Reconcile invariants over random records and holdings (see recovery/reconcile.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from core.order_groups import derive_status
from core.records import (
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    LegStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
)
from recovery.reconcile import UnknownHolding, apply_report, claims, reconcile

T0 = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
STRIKES = [400.0, 410.0, 420.5, 430.0]
KEYS = [f"SPY-20240517-P-{s:g}" for s in STRIKES]
UNKNOWN = "SPY-X"  # not a contract key (shares of the underlying are adopted: test_recovery_reconcile)
PROFILE = settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

nonzero = st.sampled_from([-4, -3, -2, -1, 1, 2, 3, 4])


@st.composite
def positions_st(draw: st.DrawFn) -> dict[str, PositionRecord]:
    out: dict[str, PositionRecord] = {}
    for i in range(draw(st.integers(0, 3))):
        idx = draw(st.lists(st.integers(0, 3), min_size=0, max_size=3, unique=True))
        contracts = tuple(
            ContractRecord(KEYS[k], Right.PUT, STRIKES[k], EXP, draw(nonzero | st.just(0) if i == 2 else nonzero))
            for k in idx
        )
        status = draw(st.sampled_from(list(PositionStatus)))
        out[f"p{i}"] = PositionRecord(
            f"p{i}", "lt112", f"g{i}", T0, -1.0, contracts, EXP, (), None, 100.0, 300.0, "h", status
        )
    return out


@st.composite
def groups_st(draw: st.DrawFn) -> dict[str, OrderGroupRecord]:
    out: dict[str, OrderGroupRecord] = {}
    n = draw(st.integers(0, 4))
    for i in range(n):
        idx = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
        legs = []
        for k in idx:
            qty = draw(nonzero)
            filled = draw(st.integers(0, abs(qty))) * (1 if qty > 0 else -1)
            status = (
                LegStatus.FILLED
                if filled == qty
                else draw(st.sampled_from([LegStatus.SUBMITTED, LegStatus.CANCELED, LegStatus.PENDING]))
            )
            legs.append(LegRecord(KEYS[k], "SPY", Right.PUT, STRIKES[k], EXP, qty, filled, 1.0, status, (i,)))
        purpose = draw(st.sampled_from(list(GroupPurpose)))
        parent = draw(st.none() | st.sampled_from([f"g{j}" for j in range(n)]))
        status = derive_status(legs, GroupStatus.SUBMITTED)
        if status is GroupStatus.INCOMPLETE and draw(st.booleans()):
            status = GroupStatus.RESOLVED
        out[f"g{i}"] = OrderGroupRecord(
            f"g{i}",
            "lt112",
            purpose,
            draw(st.sampled_from(["p0", "p1", "p2", "p9"])),
            tuple(legs),
            status,
            T0,
            T0 + timedelta(minutes=i),
            "run1",
            parent_group_id=parent,
        )
    return out


holdings_st = st.dictionaries(st.sampled_from([*KEYS, UNKNOWN]), st.integers(-5, 5), max_size=5)


@PROFILE
@given(positions=positions_st(), groups=groups_st(), holdings=holdings_st)
def test_reconcile_accounts_for_every_held_contract_and_is_idempotent(
    positions: dict[str, PositionRecord], groups: dict[str, OrderGroupRecord], holdings: dict[str, int]
) -> None:
    report = reconcile(positions, groups, holdings)
    assert reconcile(positions, groups, holdings) == report  # deterministic
    result = apply_report(positions, groups, report, T0)

    # 1. held == claimed for every contract key; unknown keys are reported, never claimed
    claimed = claims(result.positions, result.groups)
    for key in KEYS:
        assert claimed.get(key, 0) == holdings.get(key, 0), key
    unknown = [a for a in report.actions if isinstance(a, UnknownHolding)]
    assert [(a.symbol, a.quantity) for a in unknown] == (
        [(UNKNOWN, holdings[UNKNOWN])] if holdings.get(UNKNOWN) else []
    )

    # 2. no open position claims nothing or a zero quantity
    for position in result.positions.values():
        if position.status is not PositionStatus.CLOSED:
            assert position.contracts and all(c.quantity != 0 for c in position.contracts)

    # 3. idempotent: reconciling the result again finds only the same alerts
    again = reconcile(result.positions, result.groups, holdings)
    assert again.actions == tuple(unknown)

    # 4. fills stay within the legs; 5. nothing deleted, closed positions untouched
    for group in result.groups.values():
        for leg in group.legs:
            assert abs(leg.filled_quantity) <= abs(leg.quantity)
            assert leg.filled_quantity == 0 or (leg.filled_quantity > 0) == (leg.quantity > 0)
    assert set(positions) <= set(result.positions) and set(groups) == set(result.groups)
    for pid, position in positions.items():
        if position.status is PositionStatus.CLOSED:
            assert result.positions[pid] == position
    assert set(result.changed_positions) == {p for p in result.positions if result.positions[p] != positions.get(p)}
    assert set(result.changed_groups) >= {g for g in result.groups if result.groups[g] != groups[g]}
    note_event("clean" if report.clean else f"{len(report.actions)} actions")


@PROFILE
@given(positions=positions_st(), groups=groups_st())
def test_records_that_match_holdings_need_nothing(
    positions: dict[str, PositionRecord], groups: dict[str, OrderGroupRecord]
) -> None:
    # holdings exactly as the records claim (after dropping zero-quantity contracts, which are themselves fixes)
    positions = {
        pid: replace(p, contracts=tuple(c for c in p.contracts if c.quantity))
        for pid, p in positions.items()
        if p.status is PositionStatus.CLOSED or any(c.quantity for c in p.contracts)
    }
    holdings = {k: q for k, q in claims(positions, groups).items() if q}
    report = reconcile(positions, groups, holdings)
    assert report.clean and report.actions == ()
