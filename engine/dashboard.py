"""What the algorithm shows on LEAN's result page: custom charts and runtime statistics (LEAN-free decisions;
main.py draws them through QCAlgorithm.add_chart / plot / set_runtime_statistic).

Charts (chart -> series):
- "Strategy states": one series per strategy, the state's number in STATE_LEVELS (0 = WAITING ... 6 = RECOVERING);
- "Drawdown": "Drawdown %" against the breaker thresholds "Halve at %", "No new at %", "Close all at %";
- "Positions": "Open positions";
- "Recoveries": "Recovery steps" (scatter: recovery steps noted in the audit trail since the last sample);
- "ObjectStore": "Store KB" (the bytes of this namespace's keys; their count is in the runtime statistic).
Runtime statistics: strategies' states, drawdown, breaker (with "+ KILL SWITCH" while the kill switch is
tripped), open positions, recovery steps, ObjectStore keys and size.

LEAN's limits (Lean commit 24863901):
- Engine/Results/BacktestingResultHandler.cs, SampleRange: a set of series NAMES (across all charts) is counted
  against Controls.MaximumChartSeries; a series past it is ignored. The default in Common/Packets/Controls.cs
  (Controls()) is 10 (the cloud tier quota; a local `lean backtest` gets 30 from Launcher/config.json
  "maximum-chart-series"). So at most MAX_SERIES distinct series names: the fixed list above holds 7, leaving
  three for strategy states; more strategies than fit lose their state series (logged once, never an exception).
- The same method refuses points past Controls.MaximumDataPointsPerChartSeries (default 4000 in Controls()):
  every series here stops at MAX_POINTS_PER_SERIES (logged once). Points are plotted only when a value
  changes, plus once a day for the slow lines, so a year uses a few hundred per series.
- Common/BaseSeries.cs AddPoint: a point at the same time as the last one replaces it.
- Algorithm/QCAlgorithm.Plotting.cs TryGetChartSeries: "Strategy Equity", "Capacity", "Drawdown"/"Equity
  Drawdown", "Benchmark", "Assets Sales Volume", "Exposure", "Portfolio Margin", "Portfolio Turnover" are
  reserved (ArgumentException); in live mode nothing is plotted while warming up. Our "Drawdown" chart uses
  none of the reserved series names of that chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Mapping, Optional, Protocol, Tuple

from core.ports import LogPort
from core.records import AuditRecord, RiskRecord, StrategyState
from engine.protocols import EngineSnapshot

MAX_SERIES = 10  # Common/Packets/Controls.cs Controls(): MaximumChartSeries = 10
MAX_POINTS_PER_SERIES = 4000  # Common/Packets/Controls.cs Controls(): MaximumDataPointsPerChartSeries = 4000
STATE_LEVELS: Dict[StrategyState, int] = {state: number for number, state in enumerate(StrategyState)}

STATES_CHART = "Strategy states"
DRAWDOWN_CHART = "Drawdown"
POSITIONS_CHART = "Positions"
RECOVERIES_CHART = "Recoveries"
STORE_CHART = "ObjectStore"
RECOVERY_KINDS = frozenset(
    {
        "missed-fill",
        "fill-priced",
        "recovery",
        "rebind",
        "adopted",
        "orphan-cleaned",
        "quantity-mismatch",
        "lost",
        "stale",
    }
)


@dataclass(frozen=True)
class SeriesSpec:
    chart: str
    name: str
    scatter: bool = False
    unit: str = ""


class ChartPort(Protocol):
    """LEAN's charting, as main.py gives it (QCAlgorithm.add_chart + Chart/Series, plot, set_runtime_statistic)."""

    def declare(self, spec: SeriesSpec) -> None: ...

    def plot(self, chart: str, series: str, value: float) -> None: ...

    def statistic(self, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class DashboardFacts:
    """One sample of what the charts show; built by main.py from the engine's snapshot and the store."""

    now: datetime
    states: Mapping[str, StrategyState]
    drawdown: float  # fraction
    breaker: str
    open_positions: int
    recovery_steps: int  # recovery steps noted in the audit trail since this run started
    store_keys: int
    store_bytes: int


@dataclass(frozen=True)
class Thresholds:
    halve: float
    no_new: float
    close_all: float


@dataclass
class Dashboard:
    port: ChartPort
    strategy_ids: Tuple[str, ...]
    thresholds: Thresholds
    log: LogPort
    series: List[SeriesSpec] = field(default_factory=list)
    _last: Dict[Tuple[str, str], float] = field(default_factory=dict)
    _points: Dict[Tuple[str, str], int] = field(default_factory=dict)
    _full_logged: set[Tuple[str, str]] = field(default_factory=set)
    _stats: Dict[str, str] = field(default_factory=dict)
    _recoveries_plotted: int = 0

    def __post_init__(self) -> None:
        fixed = [
            SeriesSpec(DRAWDOWN_CHART, "Drawdown %", unit="%"),
            SeriesSpec(DRAWDOWN_CHART, "Halve at %", unit="%"),
            SeriesSpec(DRAWDOWN_CHART, "No new at %", unit="%"),
            SeriesSpec(DRAWDOWN_CHART, "Close all at %", unit="%"),
            SeriesSpec(POSITIONS_CHART, "Open positions"),
            SeriesSpec(RECOVERIES_CHART, "Recovery steps", scatter=True),
            SeriesSpec(STORE_CHART, "Store KB", unit="KB"),
        ]
        room = MAX_SERIES - len(fixed)
        states = [SeriesSpec(STATES_CHART, strategy_id) for strategy_id in self.strategy_ids]
        if len(states) > room:
            dropped = [spec.name for spec in states[room:]]
            self.log.error(f"charts: LEAN keeps {MAX_SERIES} series; no state series for {dropped}")
        self.series = [*states[:room], *fixed]
        for spec in self.series:
            self.port.declare(spec)

    def sample(self, facts: DashboardFacts, daily: bool = False, force: bool = False) -> None:
        """Plot what changed since the last sample, then the runtime statistics. `daily` adds the slow values
        (drawdown, store size) when they changed; `force` (start-up, end of algorithm) plots every value, so
        the constant threshold lines have their end points. A 10-year backtest stays under 4000 per series."""
        values: Dict[Tuple[str, str], float] = {
            (STATES_CHART, sid): float(STATE_LEVELS.get(state, -1)) for sid, state in facts.states.items()
        }
        values[(POSITIONS_CHART, "Open positions")] = float(facts.open_positions)
        drawdown = round(facts.drawdown * 100, 2)
        if force or self._changed(DRAWDOWN_CHART, "Drawdown %", drawdown, margin=0.01 if daily else 0.25):
            values[(DRAWDOWN_CHART, "Drawdown %")] = drawdown
        if force:
            values[(DRAWDOWN_CHART, "Halve at %")] = self.thresholds.halve * 100
            values[(DRAWDOWN_CHART, "No new at %")] = self.thresholds.no_new * 100
            values[(DRAWDOWN_CHART, "Close all at %")] = self.thresholds.close_all * 100
        if daily or force:
            values[(STORE_CHART, "Store KB")] = round(facts.store_bytes / 1024, 1)
        new_steps = facts.recovery_steps - self._recoveries_plotted
        if new_steps > 0:
            values[(RECOVERIES_CHART, "Recovery steps")] = float(new_steps)
            self._recoveries_plotted = facts.recovery_steps
        declared = {(spec.chart, spec.name) for spec in self.series}
        for key, value in values.items():
            if key in declared and (force or self._last.get(key) != value):
                self._plot(key, value)
        self._statistics(facts)

    def _changed(self, chart: str, name: str, value: float, margin: float) -> bool:
        last = self._last.get((chart, name))
        return last is None or abs(last - value) >= margin

    def _plot(self, key: Tuple[str, str], value: float) -> None:
        count = self._points.get(key, 0)
        if count >= MAX_POINTS_PER_SERIES:
            if key not in self._full_logged:
                self._full_logged.add(key)
                self.log.error(f"charts: {key[0]}/{key[1]} reached LEAN's {MAX_POINTS_PER_SERIES} points; not plotted")
            return
        self._points[key] = count + 1
        self._last[key] = value
        self.port.plot(key[0], key[1], value)

    def _statistics(self, facts: DashboardFacts) -> None:
        stats = {
            "Strategies": ", ".join(f"{sid} {state.value}" for sid, state in sorted(facts.states.items())),
            "Drawdown": f"{facts.drawdown:.2%} (halve {self.thresholds.halve:.0%})",
            "Breaker": facts.breaker,
            "Open positions": str(facts.open_positions),
            "Recovery steps": str(facts.recovery_steps),
            "ObjectStore": f"{facts.store_keys} keys, {facts.store_bytes / 1024:.1f} KB",
        }
        for name, value in stats.items():
            if self._stats.get(name) != value:
                self._stats[name] = value
                self.port.statistic(name, value)

    def points(self) -> Mapping[Tuple[str, str], int]:
        return dict(self._points)


def recovery_steps_since(audit: Optional[AuditRecord], since: datetime) -> int:
    """Recovery steps in the (bounded) audit trail at or after `since` (UTC, the audit's clock)."""
    if audit is None:
        return 0
    return sum(1 for entry in audit.entries if entry.kind in RECOVERY_KINDS and entry.at >= since)


def _breaker_text(risk: Optional[RiskRecord]) -> str:
    """The breaker level, and the kill switch when it is tripped (engine/risk.py): it outlasts every breaker."""
    if risk is None:
        return "NONE"
    return f"{risk.breaker.value} + KILL SWITCH" if risk.kill_switch_since is not None else risk.breaker.value


def facts_of(
    snapshot: EngineSnapshot, audit: Optional[AuditRecord], since: datetime, now: datetime, sizes: Mapping[str, int]
) -> DashboardFacts:
    """One sample from the engine's snapshot, the audit trail (recovery steps since `since`, UTC) and the stored
    value sizes by key."""
    risk = snapshot.risk
    return DashboardFacts(
        now=now,
        states={sid: record.state for sid, record in snapshot.strategies.items()},
        drawdown=snapshot.drawdown,
        breaker=_breaker_text(risk),
        open_positions=len(snapshot.open_positions()),
        recovery_steps=recovery_steps_since(audit, since),
        store_keys=len(sizes),
        store_bytes=sum(sizes.values()),
    )


__all__ = [
    "MAX_POINTS_PER_SERIES",
    "MAX_SERIES",
    "STATE_LEVELS",
    "ChartPort",
    "Dashboard",
    "DashboardFacts",
    "SeriesSpec",
    "Thresholds",
    "facts_of",
    "recovery_steps_since",
]
