"""Through main.py and the harness: the process dies right after a 0DTE stop-loss exit is sent, the exit fills
while it is down (no order events), and the restart books the loss the broker's fills imply, not a gain."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.records import PositionStatus
from recovery.reconcile import FILL_PRICE_UNKNOWN
from tests.harness.faults import CrashPlan
from tests.harness.simulation import Deployment

START, END = date(2024, 1, 2), date(2024, 1, 5)


def test_an_exit_filled_while_down_is_booked_within_the_quotes_of_the_broker_fills() -> None:
    counting = Deployment(seed=1, start=START, end=END).run()
    exits = [
        p
        for p in counting.crash_plan.points
        if p.kind == "order-submit" and p.detail.startswith("after zero_dte") and "-exit-" in p.detail
    ]
    assert exits, "the seed-1 0DTE condor is stopped out on Friday"
    exit_tag = exits[0].detail.removeprefix("after ")
    position_id = exit_tag.split("-exit-")[0]
    deployment = Deployment(seed=1, start=START, end=END, crash_plan=CrashPlan(crash_at=(exits[0].number,))).run()
    assert [run.crash is not None for run in deployment.runs] == [True, False]

    snapshot = deployment.engine.snapshot()
    tags = {group.group_id for group in snapshot.groups.values() if group.position_id == position_id}
    orders = [order for order in deployment.brokerage.orders.values() if order.tag in tags]
    exit_orders = [order for order in orders if order.tag == exit_tag]
    assert exit_orders and all(order.filled == order.quantity for order in exit_orders), "filled while down"
    broker_pnl = -sum(order.filled * order.fill_price for order in orders) * 100

    # The engine prices a closing fill learned from holdings at the quote mid of its first market bar after the
    # restart; the broker filled at the bid or ask a few minutes earlier. So the booked figure may differ from the
    # broker's by at most the spread of the quotes each contract had between the crash and that bar.
    market, brokerage = deployment.market, deployment.brokerage
    crashed_at, restarted_at = deployment.runs[0].ended_at, deployment.runs[1].started_at
    assert crashed_at is not None
    window = [
        i for i, step in enumerate(market.steps) if crashed_at <= step.time <= restarted_at + timedelta(minutes=5)
    ]
    allowance = 0.0
    for order in exit_orders:
        quotes = [brokerage.quote(order.symbol, i) for i in window]
        allowance += abs(order.filled) * (max(ask for _, _, ask in quotes) - min(bid for _, bid, _ in quotes))
    closed = snapshot.positions[position_id]
    assert closed.status is PositionStatus.CLOSED and closed.realized_pnl is not None
    assert broker_pnl < 0 and closed.realized_pnl < 0
    assert closed.realized_pnl == pytest.approx(broker_pnl, abs=allowance * 100)
    assert FILL_PRICE_UNKNOWN not in closed.note
    risk = snapshot.risk
    assert risk is not None and position_id in risk.applied_position_ids
    assert risk.daily_loss >= -closed.realized_pnl - 1e-6  # (the LT112 win later that day ends the streak)
