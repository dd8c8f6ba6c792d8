"""Through main.py and the harness: records created while LEAN delivers an order event are stamped with the
algorithm's clock at that moment, not with the last bar's time, so the unfilled-order timeout never cancels a
recovery group it has just created and sends it again."""

from __future__ import annotations

from datetime import date, datetime

from core.records import GroupPurpose, GroupStatus
from tests.harness.faults import FaultPlan, LegFault
from tests.harness.simulation import MARKET_ENTRIES, Deployment

START, END = date(2024, 1, 2), date(2024, 1, 4)


def test_a_completion_created_by_an_order_event_is_stamped_with_the_event_time_and_not_resent() -> None:
    # LT112's entry is the first submission (10:00); the broker cancels its first leg at 10:05 while the others
    # fill, and the engine sends the completion from inside that order event, before the 10:05 bar's on_data
    faults = FaultPlan(rules={(1, 1): LegFault("cancel")})
    run = Deployment(
        seed=1, start=START, end=END, parameters={"zero-dte-enabled": "false", **MARKET_ENTRIES}, faults=faults
    ).run()
    assert run.runtime_error is None
    groups = run.engine.snapshot().groups
    (entry,) = [g for g in groups.values() if g.purpose is GroupPurpose.ENTRY]
    completions = [g for g in groups.values() if g.purpose is GroupPurpose.COMPLETION]
    assert len(completions) == 1, [(g.group_id, g.status.value) for g in completions]
    (completion,) = completions
    became_incomplete = datetime(2024, 1, 3, 10, 5)
    assert entry.created_at == datetime(2024, 1, 3, 10, 0)
    assert completion.created_at == became_incomplete and completion.status is GroupStatus.FILLED
    assert entry.decision is not None and entry.decision.startswith("COMPLETE at 2024-01-03 10:05")
    cancels = [m for _, _, m in run.algorithm.logs if "unfilled since" in m]
    assert cancels == []
