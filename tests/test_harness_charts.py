"""main.py's LEAN charts and runtime statistics over the demo's crash-and-restart run, as the harness records
them (tests/harness/lean_stub/charting.py), within LEAN's chart limits."""

from __future__ import annotations

import argparse
import sys
from datetime import date

import pytest

from tests import demo
from tests.harness.lean_stub.charting import MAXIMUM_CHART_SERIES, MAXIMUM_DATA_POINTS_PER_CHART_SERIES
from tests.harness.loader import load_main
from tests.harness.simulation import Deployment

EXPECTED = {
    "Strategy states": {"lt112", "zero_dte", "put_credit_spread"},
    "Drawdown": {"Drawdown %", "Halve at %", "No new at %", "Close all at %"},
    "Positions": {"Open positions"},
    "Recoveries": {"Recovery steps"},
    "ObjectStore": {"Store KB"},
}


@pytest.fixture(scope="module")
def demo_run() -> demo.DemoDeployment:
    points = demo._deployment(3, 1, None, ()).run().crash_plan.points
    order = demo._choose(points, 1, False)
    deployment, _ = demo.run_with_crash(argparse.Namespace(weeks=3, seed=1, storage=None, any=False), order)
    assert len(deployment.runs) == 2
    return deployment


def test_every_series_is_drawn_over_the_demo_run(demo_run: demo.DemoDeployment) -> None:
    charts = demo_run.algorithm.charts  # the restarted instance: LEAN starts a new result page per deployment
    for chart, names in EXPECTED.items():
        assert chart in charts, sorted(charts)
        for name in names:
            assert charts[chart].series[name].values, (chart, name)
    for name in ("Drawdown %", "Halve at %", "No new at %", "Close all at %"):
        assert len(charts["Drawdown"].series[name].values) >= 2, name  # a line, not a dot


def test_the_restart_is_marked_with_its_recovery_steps(demo_run: demo.DemoDeployment) -> None:
    restart = demo_run.runs[-1].started_at
    marks = demo_run.algorithm.charts["Recoveries"].series["Recovery steps"].values
    assert marks and marks[0][0] == restart and marks[0][1] >= 1


def test_the_demo_run_stays_within_leans_chart_limits(demo_run: demo.DemoDeployment) -> None:
    report = demo_run.algorithm.limit_report()
    assert len(report.series_names) <= MAXIMUM_CHART_SERIES
    assert report.dropped_series == [] and report.over_points == []
    for chart in demo_run.algorithm.charts.values():
        for series in chart.series.values():
            assert len(series.values) <= MAXIMUM_DATA_POINTS_PER_CHART_SERIES


def test_runtime_statistics_show_states_drawdown_positions_recoveries_and_store(
    demo_run: demo.DemoDeployment,
) -> None:
    stats = demo_run.algorithm.runtime_statistics
    assert set(stats) == {"Strategies", "Drawdown", "Breaker", "Open positions", "Recovery steps", "ObjectStore"}
    assert "lt112" in stats["Strategies"] and "zero_dte" in stats["Strategies"]
    assert stats["ObjectStore"].endswith("KB") and int(stats["ObjectStore"].split()[0]) > 0


def test_scheduled_saves_sample_the_charts_only_while_the_exchange_is_open() -> None:
    """The 5-minute save is scheduled with DateRules.EveryDay + TimeRules.Every, which fire around the clock,
    weekends included: nights and weekends change no chart, so they do not pay for a sample (three in four of
    the year's 105,000 saves). The daily sample at the final save and the forced ones still come."""
    module = sys.modules[load_main().__module__]
    dashboard = module.LeanDashboard  # type: ignore[attr-defined]
    original = dashboard.sample
    samples: list[tuple[bool, bool, bool]] = []  # (exchange open, daily, force)

    def sample(self: object, daily: bool, force: bool = False) -> None:
        algorithm = self._algorithm  # type: ignore[attr-defined]
        samples.append((bool(algorithm.securities[algorithm.underlying_symbol].exchange.exchange_open), daily, force))
        original(self, daily, force)

    dashboard.sample = sample
    try:
        Deployment(seed=5, start=date(2024, 1, 2), end=date(2024, 1, 8), step_minutes=5).run()
    finally:
        dashboard.sample = original
    routine = [open_ for open_, daily, force in samples if not daily and not force]
    assert routine and all(routine), "every routine sample in session, none at night or on the weekend"
    assert any(daily for _, daily, _ in samples), "the daily sample at the final save still comes"
