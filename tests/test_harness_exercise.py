"""Exercise and assignment through the unchanged main.py on the harness (which follows LEAN's exercise model
and BacktestingBrokerage's early assignment, see tests/harness/brokerage.py and the conformance tests)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.records import GroupPurpose, PositionStatus
from tests.crash_drill import Scenario, check, shocked_market
from tests.harness.faults import CrashPlan
from tests.harness.simulation import MARKET_ENTRIES, Deployment

FRIDAY = date(2024, 1, 5)


def test_spy_short_put_assigned_early_leaves_no_untracked_shares_and_books_the_pnl() -> None:
    # the Friday 0DTE condor is entered at 10:30; at 11:00 SPY is 8 % lower: its short put is deep in the money
    # on its expiry day, and the broker's hourly assignment scan assigns it (DefaultOptionAssignmentModel)
    market = shocked_market(7, FRIDAY, date(2024, 1, 8), datetime(2024, 1, 5, 11, 0), 0.92)
    deployment = Deployment(
        seed=7,
        start=FRIDAY,
        end=date(2024, 1, 8),
        market=market,
        parameters={"lt112-enabled": "false", **MARKET_ENTRIES},
    ).run()
    assert deployment.runtime_error is None
    snapshot = deployment.engine.snapshot()
    settlements = sorted(
        (g for g in snapshot.groups.values() if g.purpose is GroupPurpose.SETTLEMENT), key=lambda g: g.created_at
    )
    assignment, sale = settlements[0], settlements[1]
    assert (assignment.decision or "").startswith("assignment")
    delivered = {leg.symbol: leg.filled_quantity for leg in assignment.legs}["SPY"]
    assert delivered > 0
    # the shares were sold at the next bar, by an order of their own
    assert [(leg.symbol, leg.filled_quantity) for leg in sale.legs] == [("SPY", -delivered)]
    assert sale.updated_at <= datetime(2024, 1, 5, 11, 5)
    # and what the assignment left of the condor was closed too (an exit, or its expiry the same day and the
    # shares that delivered sold at Monday's open): nothing is held at the end, nothing had to be adopted
    assert any(g.purpose is GroupPurpose.EXIT for g in snapshot.groups.values())
    assert not any("adopted" in message for _, _, message in deployment.algorithm.logs)
    assert deployment.broker_holdings() == {}
    (position,) = snapshot.positions.values()
    assert position.status is PositionStatus.CLOSED and position.realized_pnl is not None
    # the booked P&L is what the account made (fills of worthless wings aside: a cent or two per contract)
    assert position.realized_pnl == pytest.approx(deployment.brokerage.cash - 250_000.0, abs=50.0)


def test_an_entry_filled_and_assigned_while_down_is_booked_as_such_not_adopted() -> None:
    """The drill's assignment scenario, crashed while the 0DTE entry's position is first saved (its fills were not
    flushed): while the algorithm is down the 8 % fall gets the condor's short put assigned. At the restart the
    broker holds neither that put nor anything of record for the 1,900 delivered shares. Recovery must book the
    fill and the assignment on the entry (not adopt the shares as untracked), then sell the shares and close the
    rest, as without the crash."""
    scenario = Scenario(2, 11, "assignment")
    counting = scenario.deployment(CrashPlan()).run()
    (point,) = [
        p
        for p in counting.crash_plan.points
        if p.kind == "store-save" and "/records/position-zero_dte-20241122" in p.detail
    ][:1]
    run = scenario.deployment(CrashPlan(crash_at=(point.number,))).run()
    assert [r.crash is not None for r in run.runs] == [True, False]
    assert check(run) == []
    groups = run.engine.snapshot().groups.values()
    (assignment,) = [
        g for g in groups if g.purpose is GroupPurpose.SETTLEMENT and (g.decision or "").startswith("assignment")
    ]
    assert "while the algorithm was down" in (assignment.decision or "")
    assert any(leg.symbol == "SPY" and leg.filled_quantity > 0 for leg in assignment.legs)
