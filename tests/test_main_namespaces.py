"""main.py puts its state under the configured namespace; backtests start clean unless asked to resume."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.harness.simulation import Deployment

START, END = date(2024, 1, 2), date(2024, 1, 5)


def _backtest(storage: Path, **parameters: str) -> Deployment:
    deployment = Deployment(seed=2, start=START, end=END, parameters=parameters, storage_root=storage, live_mode=False)
    return deployment.run()


def _strategy_keys(deployment: Deployment) -> list[str]:
    return sorted(key for key in deployment.store.keys if "/records/strategy-" in key)


def test_state_lives_under_the_state_namespace_parameter_and_the_run(tmp_path: Path) -> None:
    run = _backtest(tmp_path, **{"state-namespace": "myfork"})
    run_id = run.runs[0].algorithm_id
    keys = _strategy_keys(run)
    assert keys, "the strategies save their state"
    assert all(key.startswith(f"myfork/424242/backtest/{run_id}/") for key in keys)


def test_a_second_backtest_starts_clean_and_resume_run_continues_the_first(tmp_path: Path) -> None:
    first = _backtest(tmp_path)
    first_id = first.runs[0].algorithm_id
    entered = {s: r.last_entry_day for s, r in first.engine.snapshot().strategies.items()}
    assert any(entered.values()), "the first backtest entered a position in its week"

    fresh = _backtest(tmp_path)
    assert fresh.runs[0].algorithm_id != first_id
    restored = [line for _, _, line in fresh.algorithm.logs if "risk restored" in line]
    assert restored == [], "a new backtest must not load the first one's state"

    resumed = _backtest(tmp_path, **{"resume-run": first_id})
    restored = [line for _, _, line in resumed.algorithm.logs if "risk restored" in line]
    assert restored, "resume-run loads the named backtest's state"
