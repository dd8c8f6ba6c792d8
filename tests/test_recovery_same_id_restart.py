"""Through main.py and the harness: a live restart that keeps the same algorithm id (the cloud restarting a failed
live algorithm, a container restarted with the same launcher config) recovers exactly like one with a new id.

LEAN gives the open orders it reloads at a restart new ids counted from 1 in the new process
(Engine/TransactionHandlers/BrokerageTransactionHandler.cs `AddOpenOrder` -> `SecurityTransactionManager.
GetIncrementOrderId`), whatever the algorithm id, so the saved order ids of the previous process mean nothing and
every start must look the groups' orders up again at the broker (by broker id, then by tag)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from core.records import GroupPurpose, GroupStatus
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.simulation import MARKET_ENTRIES, Deployment

START, END = date(2024, 1, 2), date(2024, 1, 4)
# LT112's entry (the first submission, 10:00) fills two steps after it is ready (10:15): still working at the
# broker when the process comes back at 10:10, ten minutes after a crash right after the broker accepted it
SLOW_ENTRY = FaultPlan(rules={(1, leg): LegFault("late", delay_steps=2) for leg in (1, 2, 3)})


class SameIdDeployment(Deployment):
    """Every (re)start keeps the algorithm id of the first one."""

    def _algorithm_id(self) -> str:
        return "L-1"


def _deployment(cls: type, crash_plan: CrashPlan) -> Any:
    return cls(seed=1, start=START, end=END, faults=SLOW_ENTRY, crash_plan=crash_plan, parameters=MARKET_ENTRIES)


def _crash_after_the_entry() -> int:
    counting = _deployment(Deployment, CrashPlan()).run()
    (after_entry,) = [
        p
        for p in counting.crash_plan.points
        if p.kind == "order-submit" and p.detail.startswith("after lt112") and p.detail.endswith("-entry")
    ]
    return after_entry.number


@pytest.mark.parametrize("cls", [Deployment, SameIdDeployment], ids=["new id", "same id"])
def test_a_restart_rebinds_the_working_orders_whatever_the_algorithm_id(cls: type) -> None:
    crash_at = _crash_after_the_entry()
    run = _deployment(cls, CrashPlan(crash_at=(crash_at,))).run()
    assert run.runtime_error is None
    assert [r.crash is not None for r in run.runs] == [True, False]
    ids = {r.algorithm_id for r in run.runs}
    assert len(ids) == (1 if cls is SameIdDeployment else 2)
    snapshot = run.engine.snapshot()
    (entry,) = [g for g in snapshot.groups.values() if g.purpose is GroupPurpose.ENTRY]
    tagged = [order for order in run.brokerage.orders.values() if order.tag == entry.group_id]
    # re-bound and filled, not cancelled as orphans; no second order for any leg, no completion or rollback
    assert len(tagged) == 3 and all(order.status == "filled" for order in tagged)
    assert entry.status is GroupStatus.FILLED
    assert [g.group_id for g in snapshot.groups.values() if g.parent_group_id] == []
    audit = run.engine._store.get("audit")
    assert not [e for e in (audit.entries if audit is not None else ()) if e.kind in ("orphan-order", "legs-closed")]
    (position,) = snapshot.open_positions("lt112")
    assert run.broker_holdings() == {c.symbol: c.quantity for c in position.contracts}
    reloaded = {order_id for order_id, _ in run.runs[1].loaded_open_orders}
    assert {oid for leg in entry.legs for oid in leg.order_ids} == reloaded
