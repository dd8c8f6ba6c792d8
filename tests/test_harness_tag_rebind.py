"""Through main.py and the harness: the process dies right after the broker accepted an entry, before the group
save with its order and broker ids was made. The orders are still working at the restart (new LEAN ids); the
restart finds them by their tag (the group id) and re-binds them, instead of cancelling them as orphans."""

from __future__ import annotations

from datetime import date

from core.records import GroupPurpose, GroupStatus, LegStatus
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.simulation import MARKET_ENTRIES, Deployment

START, END = date(2024, 1, 2), date(2024, 1, 4)
# The first submission is the LT112 entry (3 legs, placed at 10:00, ready at 10:05). Each leg fills two steps after
# it is ready (10:15): still open when the process comes back at 10:10, ten minutes after the crash, and filled
# before the engine's 5-minute unfilled-order timeout would cancel it.
SLOW_ENTRY = FaultPlan(rules={(1, leg): LegFault("late", delay_steps=2) for leg in (1, 2, 3)})


def deployment(crash_plan: CrashPlan) -> Deployment:
    return Deployment(seed=1, start=START, end=END, faults=SLOW_ENTRY, crash_plan=crash_plan, parameters=MARKET_ENTRIES)


def test_restart_rebinds_live_orders_by_tag_when_their_broker_ids_were_never_saved() -> None:
    counting = deployment(CrashPlan()).run()
    (after_entry,) = [
        p
        for p in counting.crash_plan.points
        if p.kind == "order-submit" and p.detail.startswith("after lt112") and p.detail.endswith("-entry")
    ]
    entry_id = after_entry.detail.removeprefix("after ")
    run = deployment(CrashPlan(crash_at=(after_entry.number,))).run()
    assert run.runtime_error is None
    assert [r.crash is not None for r in run.runs] == [True, False]
    # the broker still had the entry's orders when the new process started: LEAN reloaded them with new ids
    reloaded = run.runs[1].loaded_open_orders
    tagged = [order for order in run.brokerage.orders.values() if order.tag == entry_id]
    assert len(tagged) == 3 and {broker_id for _, broker_id in reloaded} == {o.broker_id for o in tagged}

    # re-bound, not cancelled: every order filled, the entry group owns the new ids, one position, one entry
    assert all(order.status == "filled" for order in tagged)
    snapshot = run.engine.snapshot()
    entry = snapshot.groups[entry_id]
    assert entry.purpose is GroupPurpose.ENTRY and entry.status is GroupStatus.FILLED
    assert entry.run_id.startswith("L-2@") and all(leg.status is LegStatus.FILLED for leg in entry.legs)
    assert {oid for leg in entry.legs for oid in leg.order_ids} == {oid for oid, _ in reloaded}
    assert {bid for leg in entry.legs for bid in leg.broker_ids} == {o.broker_id for o in tagged}
    audit = run.engine._store.get("audit")
    assert not [e for e in (audit.entries if audit is not None else ()) if e.kind == "orphan-order"]
    (position,) = snapshot.open_positions("lt112")
    assert position.entry_group_id == entry_id
    assert run.brokerage.submissions == counting.brokerage.submissions  # no second entry, no rollback
    held = {c.symbol: c.quantity for c in position.contracts}
    assert run.broker_holdings() == held
