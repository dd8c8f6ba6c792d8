"""engine/dashboard.py: the charts stay within LEAN's limits (series names, points per series) and plot only
what changed; runtime statistics are set when their text changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from core.ports import ListLog
from core.records import AuditEntry, AuditRecord, StrategyState
from engine.dashboard import (
    MAX_POINTS_PER_SERIES,
    MAX_SERIES,
    Dashboard,
    DashboardFacts,
    SeriesSpec,
    Thresholds,
    recovery_steps_since,
)

T0 = datetime(2024, 1, 2, 9, 30)


class RecordingCharts:
    def __init__(self) -> None:
        self.declared: List[SeriesSpec] = []
        self.points: Dict[Tuple[str, str], List[float]] = {}
        self.stats: List[Tuple[str, str]] = []

    def declare(self, spec: SeriesSpec) -> None:
        self.declared.append(spec)

    def plot(self, chart: str, series: str, value: float) -> None:
        self.points.setdefault((chart, series), []).append(value)

    def statistic(self, name: str, value: str) -> None:
        self.stats.append((name, value))


def facts(
    minute: int = 0, *, drawdown: float = 0.0, positions: int = 0, steps: int = 0, **states: StrategyState
) -> DashboardFacts:
    return DashboardFacts(
        now=T0 + timedelta(minutes=minute),
        states=states or {"lt112": StrategyState.WAITING},
        drawdown=drawdown,
        breaker="NONE",
        open_positions=positions,
        recovery_steps=steps,
        store_keys=12,
        store_bytes=40_000,
    )


def dashboard(*strategy_ids: str) -> tuple[Dashboard, RecordingCharts, ListLog]:
    charts, log = RecordingCharts(), ListLog()
    board = Dashboard(charts, strategy_ids or ("lt112",), Thresholds(0.10, 0.15, 0.20), log)
    return board, charts, log


def test_too_many_strategies_keep_lean_series_limit_and_say_so() -> None:
    ids = tuple(f"s{n}" for n in range(5))
    board, charts, log = dashboard(*ids)
    assert len({spec.name for spec in charts.declared}) == MAX_SERIES
    assert any("no state series" in message and "s4" in message for message in log.errors)
    board.sample(facts(**{sid: StrategyState.ACTIVE for sid in ids}), force=True)
    assert len({name for _, name in charts.points}) <= MAX_SERIES


def test_every_series_is_plotted_on_a_forced_sample_and_thresholds_are_lines() -> None:
    board, charts, _ = dashboard("lt112", "zero_dte")
    board.sample(facts(lt112=StrategyState.ACTIVE, zero_dte=StrategyState.WAITING, steps=2), force=True)
    board.sample(facts(60, lt112=StrategyState.ACTIVE, zero_dte=StrategyState.WAITING, steps=2), force=True)
    declared = {(spec.chart, spec.name) for spec in charts.declared}
    assert declared <= set(charts.points)
    assert charts.points[("Drawdown", "Halve at %")] == [10.0, 10.0]
    assert charts.points[("Recoveries", "Recovery steps")] == [2.0]  # only new steps are marked


def test_unchanged_values_are_not_replotted() -> None:
    board, charts, _ = dashboard()
    for minute in range(0, 600, 5):
        board.sample(facts(minute))
    assert all(len(values) == 1 for values in charts.points.values()), charts.points


def test_runtime_statistics_are_set_only_when_their_text_changes() -> None:
    board, charts, _ = dashboard()
    board.sample(facts(0))
    board.sample(facts(5))
    board.sample(facts(10, positions=1))
    names = [name for name, _ in charts.stats]
    assert names.count("Open positions") == 2 and names.count("Strategies") == 1
    assert {"Strategies", "Drawdown", "Breaker", "Open positions", "Recovery steps", "ObjectStore"} <= set(names)


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=MAX_POINTS_PER_SERIES + 1, max_value=MAX_POINTS_PER_SERIES + 300))
def test_no_series_ever_gets_more_points_than_lean_keeps(samples: int) -> None:
    board, charts, log = dashboard()
    for n in range(samples):
        board.sample(facts(n, positions=n % 2, drawdown=(n % 7) / 100), daily=True)
    assert max(len(values) for values in charts.points.values()) == MAX_POINTS_PER_SERIES
    assert any("4000 points" in message for message in log.errors)


def test_recovery_steps_count_recovery_kinds_since_the_run_started() -> None:
    audit = AuditRecord(
        (
            AuditEntry(T0 - timedelta(days=1), "missed-fill", "old run"),
            AuditEntry(T0, "missed-fill", "x"),
            AuditEntry(T0, "breaker", "not a recovery"),
            AuditEntry(T0 + timedelta(minutes=1), "recovery", "y"),
        )
    )
    assert recovery_steps_since(audit, T0) == 2
    assert recovery_steps_since(None, T0) == 0
