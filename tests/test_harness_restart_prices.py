"""A live restart mid-session completes an incomplete entry with priced orders (main.py on the harness).

After a restart `on_warmup_finished` runs before the first slice; the completion's missing leg is not held, so
its contract is added right then, and LEAN refuses an order for a security without data
(Algorithm/QCAlgorithm.Trading.cs PreOrderChecksImpl: SecurityPriceZero / SecurityHasNoData). The engine waits
for a price (tests/test_engine_prices_first.py proves the wait with a broker that refuses unpriced orders)."""

from __future__ import annotations

from datetime import date

from core.records import GroupPurpose, GroupStatus
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.lean_stub.enums import OrderStatus
from tests.harness.simulation import MARKET_ENTRIES, Deployment

START, END = date(2024, 1, 2), date(2024, 1, 4)
FAULTS = {(1, 1): LegFault("cancel")}  # LT112 entry: the broker cancels the long put, the shorts fill


def _deployment(crash_at: tuple[int, ...] = ()) -> Deployment:
    return Deployment(
        seed=11,
        start=START,
        end=END,
        faults=FaultPlan(rules=dict(FAULTS)),
        crash_plan=CrashPlan(crash_at=crash_at),
        parameters=MARKET_ENTRIES,
    )


def test_a_restart_mid_session_completes_an_incomplete_entry_with_priced_orders() -> None:
    counting = _deployment().run()
    completions = [
        p
        for p in counting.crash_plan.points
        if p.kind == "order-submit" and p.detail.startswith("before") and "-rec" in p.detail
    ]
    assert completions, "the cancelled leg is completed in the counting run"
    deployment = _deployment((completions[0].number,)).run()  # the process dies as the completion goes out
    assert deployment.runtime_error is None and len(deployment.runs) == 2
    restart = deployment.runs[1].started_at
    assert 9 <= restart.hour < 16, "the restart is mid-session"
    events = deployment.algorithm.transactions.events
    assert not [e for e in events if e.status == OrderStatus.INVALID], "no order refused for want of a price"
    snapshot = deployment.engine.snapshot()
    after = [g for g in snapshot.groups.values() if g.purpose is GroupPurpose.COMPLETION and g.created_at >= restart]
    assert after and all(g.status is GroupStatus.FILLED for g in after), "the restart completed the entry"
    assert not any(p.attention for p in snapshot.positions.values())
