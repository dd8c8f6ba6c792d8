"""The harness follows LEAN (commit 24863901deffa9ec7985e21ef8fbdb0258efb9e4): one test per modelled behaviour,
named after it, each naming the LEAN file and member it follows. Shared by everyone: append your own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, List

import pytest

from tests.harness.lean_stub.algorithm import QCAlgorithm, check_combo_order_sizing
from tests.harness.lean_stub.charting import (
    MAXIMUM_CHART_SERIES,
    MAXIMUM_DATA_POINTS_PER_CHART_SERIES,
    Chart,
    Charting,
    Series,
    SeriesType,
)
from tests.harness.lean_stub.enums import OrderStatus, Resolution, SecurityType
from tests.harness.lean_stub.orders import Leg, OrderTicket
from tests.harness.lean_stub.securities import ExchangeHours
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.market_calendar import is_market_open, next_market_close, slice_times
from tests.harness.object_store import SimulatedObjectStore
from tests.harness.simulation import Deployment

FRIDAY = date(2024, 1, 5)
MARKET = SyntheticMarket(7, FRIDAY, date(2024, 1, 12))


def _deploy(cls: type, *, live_mode: bool = True, end: date = FRIDAY, **kwargs: Any) -> Deployment:
    return Deployment(
        seed=7, start=FRIDAY, end=end, algorithm_class=cls, market=MARKET, live_mode=live_mode, **kwargs
    ).run()


class _Spy(QCAlgorithm):
    def initialize(self) -> None:
        self.spy = self.add_equity("SPY", Resolution.MINUTE).symbol
        option = self.add_option("SPY", Resolution.MINUTE)
        option.set_filter(-10, 10, timedelta(0), timedelta(10))
        self.canonical = option.symbol
        self.seen: List[Any] = []


def test_algorithm_id_is_empty_during_initialize_and_set_before_on_warmup_finished() -> None:
    """Algorithm/QCAlgorithm.cs `_algorithmId = ""`; Engine/Engine.cs calls `SetAlgorithmId(job.AlgorithmId)`
    only after `Setup.Setup` (initialize) returns, before AlgorithmManager.Run calls OnWarmupFinished."""

    class Algo(_Spy):
        def initialize(self) -> None:
            super().initialize()
            self.seen.append(("initialize", self.algorithm_id))

        def on_warmup_finished(self) -> None:
            self.seen.append(("warmup", self.algorithm_id))

    for live in (True, False):
        deployment = _deploy(Algo, live_mode=live)
        run_id = deployment.runs[0].algorithm_id
        assert run_id
        assert deployment.algorithm.seen == [("initialize", ""), ("warmup", run_id)]


def test_combo_legs_must_be_a_ratio_with_gcd_one() -> None:
    """Algorithm/QCAlgorithm.Trading.cs `CheckComboOrderSizing` (from `SubmitComboOrder`): ArgumentException when
    the GCD of the leg quantities is not 1; legs give the ratio, the combo quantity the size."""

    class Algo(_Spy):
        def on_data(self, data: Any) -> None:
            if self.seen:
                return
            chain = sorted(data.option_chains[self.canonical], key=lambda c: (c.expiry, c.strike))
            first, second = chain[0].symbol, chain[2].symbol
            self.add_option_contract(first)
            self.add_option_contract(second)
            try:
                self.combo_market_order([Leg.create(first, 2), Leg.create(second, -2)], 1, asynchronous=True)
            except ValueError as error:
                self.seen.append(str(error))
            tickets = self.combo_market_order([Leg.create(first, 1), Leg.create(second, -1)], 2, asynchronous=True)
            self.seen.append([ticket.quantity for ticket in tickets])

    deployment = _deploy(Algo)
    refused, placed = deployment.algorithm.seen
    assert "The global combo quantity should be used to increase or reduce the size of the order" in refused
    assert "from 1x(2 " in refused and "to 2x(1 " in refused
    assert placed == [2, -2], "leg order quantity = ratio x combo quantity (GetOrderLegGroupQuantity)"
    assert deployment.brokerage.submissions == 1, "the refused combo never reached the broker"


def test_get_file_path_of_an_unknown_key_registers_it_without_flushing_and_read_gives_null(tmp_path: Path) -> None:
    """Engine/Storage/LocalObjectStore.cs `GetFilePath`: a key ContainsKey does not know is registered with null
    content via SaveBytes(path, null), no Persist(); `ContainsKey` is then True and Common/Storage/ObjectStore.cs
    `Read` returns null (ReadBytes finds no file)."""
    store = SimulatedObjectStore(tmp_path)
    store.save("pending", "x")
    path = store.get_file_path("fresh")
    assert path.endswith("fresh")
    assert store.pending_keys() == ["pending"], "registering a new key flushes nothing"
    assert store.contains_key("fresh")
    assert store.read("fresh") is None
    store.get_file_path("pending")  # a known key: Persist()
    assert store.pending_keys() == []


def test_a_failed_disk_write_is_swallowed_and_get_file_path_still_returns_the_path(tmp_path: Path) -> None:
    """Engine/Storage/LocalObjectStore.cs `Persist`/`PersistData`: a write exception is caught, reported through
    ErrorRaised, the store stays dirty; GetFilePath returns the path anyway."""
    store = SimulatedObjectStore(tmp_path)
    store.failing_writes = lambda key: key == "state"
    assert store.save("state", "v1")
    path = store.get_file_path("state")
    assert not Path(path).exists(), "nothing reached disk"
    assert store.pending_keys() == ["state"]
    assert store.errors and "ObjectStore Persistence Error" in store.errors[-1]
    store.failing_writes = None
    store.get_file_path("state")
    assert Path(path).read_text() == "v1", "the next Persist writes it (still dirty)"


@pytest.mark.parametrize("quantity", [4, 6])
def test_combo_gcd_check_message_names_the_reduced_order(quantity: int) -> None:
    """Algorithm/QCAlgorithm.Trading.cs `CheckComboOrderSizing`: the message proposes (quantity x gcd) x (legs /
    gcd)."""
    a, b = Symbol.create("A", SecurityType.EQUITY), Symbol.create("B", SecurityType.EQUITY)
    with pytest.raises(ValueError, match=rf"from 1x\({quantity} A, -2 B\) to 2x\({quantity // 2} A, -1 B\)"):
        check_combo_order_sizing([Leg.create(a, quantity), Leg.create(b, -2)], 1)
    check_combo_order_sizing([Leg.create(a, 3), Leg.create(b, -2)], 5)  # GCD 1: accepted


def test_early_close_days_end_the_session_at_13_00() -> None:
    """Data/market-hours/market-hours-database.json "Equity-usa-[*]" lists "11/29/2024": "13:00:00" under
    "earlyCloses"; Common/Securities/SecurityExchangeHours.cs GetNextMarketClose returns that close, and it
    searches non-inclusively (from the close itself it returns the next session's close)."""
    friday = date(2024, 11, 29)
    assert next_market_close(datetime(2024, 11, 29)) == datetime(2024, 11, 29, 13, 0)
    assert next_market_close(datetime(2024, 11, 29, 13, 0)) == datetime(2024, 12, 2, 16, 0)
    assert next_market_close(datetime(2024, 11, 28)) == datetime(2024, 11, 29, 13, 0)  # Thanksgiving: closed
    assert ExchangeHours().get_next_market_close(datetime(2024, 12, 24), False) == datetime(2024, 12, 24, 13, 0)
    assert next_market_close(datetime(2024, 11, 27, 9, 0)) == datetime(2024, 11, 27, 16, 0)
    assert is_market_open(datetime(2024, 11, 29, 13, 0)) and not is_market_open(datetime(2024, 11, 29, 13, 5))
    bars = slice_times(friday, friday, 5)
    assert bars[0].time() == time(9, 35) and bars[-1].time() == time(13, 0)


# -- charting and runtime statistics (tests/harness/lean_stub/charting.py) ------------------------------------------


def _charting_algorithm(live: bool = False, warming_up: bool = False) -> object:
    class Algorithm(Charting):
        def __init__(self) -> None:
            self.live_mode, self.is_warming_up, self.now = live, warming_up, datetime(2024, 1, 2, 10, 0)
            self._init_charting()

        @property
        def time(self) -> datetime:
            return self.now

    return Algorithm()


def test_a_chart_point_at_the_same_time_replaces_the_last_one() -> None:
    """Common/BaseSeries.cs AddPoint: a point whose Time equals the last point's overwrites it."""
    algorithm: Any = _charting_algorithm()
    algorithm.plot("Positions", "Open positions", 1)
    algorithm.plot("Positions", "Open positions", 2)
    algorithm.now = datetime(2024, 1, 2, 10, 5)
    algorithm.plot("Positions", "Open positions", 3)
    values = algorithm.charts["Positions"].series["Open positions"].values
    assert [value for _, value in values] == [2.0, 3.0]


def test_reserved_chart_and_series_names_are_refused() -> None:
    """Algorithm/QCAlgorithm.Plotting.cs TryGetChartSeries + ReservedChartSeriesNames: ArgumentException for a
    reserved chart with no allowed series ("Exposure") and for a reserved series ("Drawdown"/"Equity
    Drawdown"); other series of the "Drawdown" chart are allowed."""
    algorithm: Any = _charting_algorithm()
    with pytest.raises(ValueError, match="reserved chart name"):
        algorithm.plot("Exposure", "x", 1)
    with pytest.raises(ValueError, match="reserved series name"):
        algorithm.plot("Drawdown", "Equity Drawdown", 1)
    algorithm.plot("Drawdown", "Drawdown %", 1)
    assert algorithm.charts["Drawdown"].series["Drawdown %"].values


def test_live_algorithms_do_not_plot_while_warming_up() -> None:
    """Algorithm/QCAlgorithm.Plotting.cs TryGetChartSeries: `if (LiveMode && IsWarmingUp) return false` (the
    series is created, no point added)."""
    algorithm: Any = _charting_algorithm(live=True, warming_up=True)
    algorithm.plot("Positions", "Open positions", 1)
    assert algorithm.charts["Positions"].series["Open positions"].values == []


def test_a_chart_refuses_a_second_series_of_the_same_name() -> None:
    """Common/Chart.cs AddSeries: Series.TryAdd fails -> DuplicateNameException; QCAlgorithm.AddChart keeps the
    chart already registered under that name (TryAdd)."""
    chart = Chart("ObjectStore")
    chart.add_series(Series("Store keys", SeriesType.LINE, 0, ""))
    with pytest.raises(ValueError):
        chart.add_series(Series("Store keys", SeriesType.LINE, 0, ""))
    algorithm: Any = _charting_algorithm()
    algorithm.add_chart(chart)
    algorithm.add_chart(Chart("ObjectStore"))
    assert algorithm.charts["ObjectStore"] is chart


def test_chart_limits_count_series_names_across_charts_and_points_per_series() -> None:
    """Engine/Results/BacktestingResultHandler.cs SampleRange: series NAMES go into one set checked against
    Controls.MaximumChartSeries (a new name past it is ignored); a series whose points would pass
    MaximumDataPointsPerChartSeries is skipped. Common/Packets/Controls.cs Controls(): 10 and 4000."""
    assert (MAXIMUM_CHART_SERIES, MAXIMUM_DATA_POINTS_PER_CHART_SERIES) == (10, 4000)
    algorithm: Any = _charting_algorithm()
    algorithm.plot("A", "same name", 1)
    algorithm.plot("B", "same name", 1)  # same name in another chart: counted once
    for n in range(10):
        algorithm.plot("C", f"s{n}", 1)
    report = algorithm.limit_report()
    assert len(report.series_names) == 11 and report.dropped_series == ["s9"]
    for minute in range(MAXIMUM_DATA_POINTS_PER_CHART_SERIES + 1):
        algorithm.now = datetime(2024, 1, 2) + timedelta(minutes=minute)
        algorithm.plot("A", "same name", minute)
    # the first point (10:00) plus 4001 more
    assert algorithm.limit_report().over_points == [("A", "same name", MAXIMUM_DATA_POINTS_PER_CHART_SERIES + 2)]


def test_runtime_statistics_keep_the_latest_value_as_text() -> None:
    """Algorithm/QCAlgorithm.Plotting.cs SetRuntimeStatistic: RuntimeStatistics.AddOrUpdate(name, value), the
    decimal/int/double overloads store value.ToString(InvariantCulture)."""
    algorithm: Any = _charting_algorithm()
    algorithm.set_runtime_statistic("Open positions", 1)
    algorithm.set_runtime_statistic("Open positions", "2")
    assert algorithm.runtime_statistics == {"Open positions": "2"}


def test_an_order_refused_by_the_pre_order_checks_carries_its_reason_in_the_ticket() -> None:
    """Algorithm/QCAlgorithm.Trading.cs SubmitOrderRequest -> OrderTicket.InvalidSubmitRequest (Common/Orders/
    OrderTicket.cs): request.SetResponse(error response); the ticket's status is Invalid and
    SubmitRequest.Response.ErrorMessage holds the reason (no order event is sent)."""
    ticket = OrderTicket(
        -1, Symbol.create("SPY", SecurityType.EQUITY), 1, "tag", datetime(2024, 1, 2), status=OrderStatus.INVALID
    )
    ticket.message = "The security does not have an accurate price"
    response = ticket.submit_request.response
    assert response.is_error and response.error_message == "The security does not have an accurate price"


def test_object_store_limits_count_every_other_key_and_a_registered_key_as_a_file() -> None:
    """Engine/Storage/LocalObjectStore.cs IsWithinStorageLimit: the saved key counts 1 file and its length, every
    other key in memory or on disk 1 file and its length, the replaced key is skipped; over MaxFiles or MaxSize the
    save returns False (HandleStorageLimitExceeded outside research). GetFilePath of an unknown key registers it
    through SaveBytes(path, null): the same check, and from then on it counts as a file."""
    store = SimulatedObjectStore(max_size=10, max_files=3)
    assert store.save("a", "12345") and store.save("b", "1234")
    assert store.save("a", "123456") is True  # replacing: a's old 5 bytes are not counted twice (6 + 4 = 10)
    assert store.save("c", "1") is False  # 6 + 4 + 1 > 10 bytes
    store.get_file_path("registered")  # a third file, 0 bytes
    assert store.save("d", "") is False  # a fourth file: over MaxFiles, although it has no bytes
    assert store.stored_files() == 3
    full = SimulatedObjectStore(max_size=10, max_files=1)
    full.save("x", "1")
    full.get_file_path("refused")  # over the file limit: not registered
    assert not full.contains_key("refused")


def test_object_store_read_replaces_bad_utf8_and_read_bytes_keeps_the_bytes() -> None:
    """Common/Storage/ObjectStore.cs Read: Encoding.UTF8.GetString(ReadBytes(path)), which replaces every
    invalid sequence with U+FFFD and never throws; ReadBytes returns the stored bytes unchanged. MaxFiles and
    MaxSize are properties of the same object (Controls.StorageFileCount / StorageLimit)."""
    store = SimulatedObjectStore()
    store.save_bytes("k", b'{"a":"\xff\xfe"}')
    assert store.read("k") == '{"a":"\ufffd\ufffd"}'
    assert store.read_bytes("k") == b'{"a":"\xff\xfe"}'
    assert isinstance(store.max_files, int) and isinstance(store.max_size, int)
