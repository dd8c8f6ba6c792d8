"""The unchanged main.py runs through the harness, crashes at an order submission, restarts and stays in step."""

from __future__ import annotations

from datetime import date

from tests.harness.faults import CrashPlan
from tests.harness.loader import load_main
from tests.harness.simulation import Deployment

START, END = date(2024, 1, 2), date(2024, 1, 12)


def test_loader_finds_the_one_qcalgorithm_subclass_of_main() -> None:
    assert load_main().__name__ == "CrashSafeTemplate"


def test_main_runs_crashes_after_an_order_submission_and_recovers() -> None:
    counting = Deployment(seed=1, start=START, end=END).run()
    assert counting.runtime_error is None and len(counting.runs) == 1
    submissions = [p for p in counting.crash_plan.points if p.kind == "order-submit" and p.detail.startswith("after")]
    assert submissions, "the strategies should trade in two weeks"
    crash = submissions[0]
    deployment = Deployment(seed=1, start=START, end=END, crash_plan=CrashPlan(crash_at=(crash.number,))).run()
    assert deployment.runtime_error is None
    assert [run.crash is not None for run in deployment.runs] == [True, False]
    assert deployment.runs[1].algorithm_id == "L-2" and deployment.runs[1].holdings_during_initialize == {}
    engine = deployment.engine
    tracked: dict[str, int] = {}
    for position in engine.snapshot().open_positions():
        for contract in position.contracts:
            tracked[contract.symbol] = tracked.get(contract.symbol, 0) + contract.quantity
    assert deployment.broker_holdings() == tracked
