"""LEAN's custom charting and runtime statistics, recorded so tests can assert them (LEAN commit 24863901).

Follows LEAN:
- Common/Chart.cs `Chart(name)`, `AddSeries(series)`: a second series of the same name raises
  (DuplicateNameException there; ValueError here);
- Common/Series.cs `Series(name, type, index, unit)`; Common/BaseSeries.cs `AddPoint`: a point at the same time
  as the last one replaces it;
- Algorithm/QCAlgorithm.Plotting.cs `AddChart` (TryAdd: an existing chart of that name is kept),
  `Plot(chart, series, value)` through `TryGetChartSeries`: reserved chart/series names raise ArgumentException
  (ValueError here), a missing chart or series is created as a line, and in live mode nothing is plotted while
  warming up; `SetRuntimeStatistic(name, value)` (AddOrUpdate, the value as a string);
- Engine/Results/BacktestingResultHandler.cs `SampleRange` with Common/Packets/Controls.cs `Controls()`
  defaults: `limit_report()` lists what LEAN would drop: series names past MaximumChartSeries (10, counted by
  NAME across charts, in first-sampled order) and points past MaximumDataPointsPerChartSeries (4000).
Differs from LEAN: points keep the algorithm's time as is (LEAN stores UTC); the result handler's sampling
cadence is not modelled (every point is kept, then checked against the limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Dict, List, Optional, Tuple

MAXIMUM_CHART_SERIES = 10  # Common/Packets/Controls.cs Controls()
MAXIMUM_DATA_POINTS_PER_CHART_SERIES = 4000  # Common/Packets/Controls.cs Controls()

RESERVED_CHART_SERIES_NAMES: Dict[str, List[str]] = {  # QCAlgorithm.Plotting.cs ReservedChartSeriesNames
    "Strategy Equity": ["Equity", "Return"],
    "Capacity": ["Strategy Capacity"],
    "Drawdown": ["Equity Drawdown"],
    "Benchmark": ["Benchmark"],
    "Assets Sales Volume": [],
    "Exposure": [],
    "Portfolio Margin": [],
    "Portfolio Turnover": ["Portfolio Turnover"],
}


class SeriesType(IntEnum):
    LINE = 0
    SCATTER = 1
    CANDLE = 2
    BAR = 3
    FLAG = 4
    STACKED_AREA = 5
    PIE = 6
    TREEMAP = 7


@dataclass
class Series:
    name: str = ""
    series_type: SeriesType = SeriesType.LINE
    index: int = 0
    unit: str = "$"
    values: List[Tuple[datetime, float]] = field(default_factory=list)

    def add_point(self, time: datetime, value: float) -> None:
        if self.values and self.values[-1][0] == time:
            self.values[-1] = (time, value)  # BaseSeries.AddPoint: same time -> overwrite
        else:
            self.values.append((time, value))


class Chart:
    def __init__(self, name: str) -> None:
        self.name = name
        self.series: Dict[str, Series] = {}

    def add_series(self, series: Series) -> None:
        if series.name in self.series:
            raise ValueError(f"Chart.AddSeries(): series {series.name!r} already exists in chart {self.name!r}")
        self.series[series.name] = series


@dataclass
class LimitReport:
    series_names: List[str]  # distinct series names in the order LEAN would first count them
    dropped_series: List[str]  # names past MaximumChartSeries
    over_points: List[Tuple[str, str, int]]  # (chart, series, points) past MaximumDataPointsPerChartSeries


class Charting:
    """The QCAlgorithm members for charts; QCAlgorithm (algorithm.py) inherits them."""

    live_mode: bool
    is_warming_up: bool

    def _init_charting(self) -> None:
        self.charts: Dict[str, Chart] = {}
        self.runtime_statistics: Dict[str, str] = {}
        self.chart_calls: List[Tuple[str, str, str, float]] = []  # (kind, chart, series, value) in call order

    @property
    def time(self) -> datetime:  # overridden by QCAlgorithm
        raise NotImplementedError

    def add_chart(self, chart: Chart) -> None:
        self.chart_calls.append(("add_chart", chart.name, "", 0.0))
        self.charts.setdefault(chart.name, chart)

    def plot(self, chart: str, series: str, value: float) -> None:
        self.chart_calls.append(("plot", chart, series, float(value)))
        target = self._chart_series(chart, series)
        if target is not None:
            target.add_point(self.time, float(value))

    def _chart_series(self, chart_name: str, series_name: str) -> Optional[Series]:
        reserved = RESERVED_CHART_SERIES_NAMES.get(chart_name)
        if reserved is not None and not reserved:
            raise ValueError(f"'{chart_name}' is a reserved chart name.")
        if reserved is not None and series_name in reserved:
            raise ValueError(f"'{series_name}' is a reserved series name for chart '{chart_name}'.")
        chart = self.charts.setdefault(chart_name, Chart(chart_name))
        series = chart.series.get(series_name)
        if series is None:
            series = Series(series_name)
            chart.add_series(series)
        if self.live_mode and self.is_warming_up:
            return None
        return series

    def set_runtime_statistic(self, name: str, value: object) -> None:
        self.chart_calls.append(("set_runtime_statistic", name, str(value), 0.0))
        self.runtime_statistics[name] = str(value)

    def limit_report(self) -> LimitReport:
        """What BacktestingResultHandler.SampleRange would refuse with Controls()' default limits."""
        names: List[str] = []
        over: List[Tuple[str, str, int]] = []
        for chart in self.charts.values():
            for series in chart.series.values():
                if series.values and series.name not in names:
                    names.append(series.name)
                if len(series.values) > MAXIMUM_DATA_POINTS_PER_CHART_SERIES:
                    over.append((chart.name, series.name, len(series.values)))
        return LimitReport(names, names[MAXIMUM_CHART_SERIES:], over)
