"""The harness follows LEAN (commit 24863901deffa9ec7985e21ef8fbdb0258efb9e4): one test per modelled behaviour,
named after it, each naming the LEAN file and member it follows. Shared by everyone: append your own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, List

import pytest

from core.records import Right
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.lean_stub import option_universe
from tests.harness.lean_stub.algorithm import QCAlgorithm, check_combo_order_sizing
from tests.harness.lean_stub.charting import (
    MAXIMUM_CHART_SERIES,
    MAXIMUM_DATA_POINTS_PER_CHART_SERIES,
    Chart,
    Charting,
    Series,
    SeriesType,
)
from tests.harness.lean_stub.enums import OptionRight, OptionStyle, OrderStatus, Resolution, SecurityType
from tests.harness.lean_stub.market_data import strike_window
from tests.harness.lean_stub.orders import Leg, OrderTicket
from tests.harness.lean_stub.securities import ExchangeHours
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket, minimum_tick
from tests.harness.market_calendar import is_market_open, next_market_close, option_expiries, slice_times
from tests.harness.object_store import SimulatedObjectStore
from tests.harness.simulation import Deployment
from tests.harness.transactions import NO_DATA_MESSAGE, zero_price_message

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


def test_utc_time_is_the_time_keepers_utc_of_each_time_update() -> None:
    """Algorithm/QCAlgorithm.cs `UtcTime` returns Common/TimeKeeper.cs `UtcTime`, the instant of the current time
    update; `Time` is the same instant in New York (EST in January: UTC-5), on every slice."""

    class Algo(_Spy):
        def on_data(self, data: Any) -> None:
            self.seen.append((self.time, self.utc_time))

    seen = _deploy(Algo).algorithm.seen
    assert len(seen) > 10
    assert all(utc - local == timedelta(hours=5) for local, utc in seen)
    assert len({utc for _, utc in seen}) == len(seen), "a new UtcTime at every slice"


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


def test_get_file_path_is_the_storage_root_joined_with_the_key_without_resolving_links(tmp_path: Path) -> None:
    """Engine/Storage/LocalObjectStore.cs `PathForKey`: Path.Combine(AlgorithmStorageRoot, key), the root made
    absolute once in `Initialize` (DirectoryInfo.FullName keeps a symbolic link as it is); `PersistData` creates
    a missing parent folder before File.WriteAllBytes."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    store = SimulatedObjectStore(link)
    store.save("ns/records/x-a.json", "v1")
    path = store.get_file_path("ns/records/x-a.json")  # a known key: Persist()
    assert path == str(link / "ns" / "records" / "x-a.json"), "under the root as given, the link not resolved"
    assert (real / "ns" / "records" / "x-a.json").read_text() == "v1", "the parent folders were created"


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
    assert is_market_open(datetime(2024, 11, 29, 12, 55)) and not is_market_open(datetime(2024, 11, 29, 13, 0))
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


# ----------------------------------------------------------------------------------------------- exercise / expiry
# Common/Orders/OptionExercise/DefaultExerciseModel.cs OptionExercise, Common/Securities/Option/Option.cs
# (IsAutoExercised, GetExerciseQuantity, ExerciseSettlement), Common/Securities/IndexOption/IndexOption.cs,
# Common/Securities/Option/OptionPortfolioModel.cs ProcessCloseTradeProfit, Brokerages/Backtesting/
# BacktestingBrokerage.cs ProcessAssignmentOrders, Common/Securities/Option/DefaultOptionAssignmentModel.cs,
# Engine/TransactionHandlers/BrokerageTransactionHandler.cs HandleOptionNotification/EmitOptionNotificationEvents.


def _exercise_rig(security_type: str = "equity") -> tuple[Any, Any, Any]:
    from tests.harness.brokerage import SimulatedBrokerage  # noqa: PLC0415
    from tests.harness.lean_stub.enums import SecurityType  # noqa: PLC0415
    from tests.harness.lean_stub.symbols import Symbol  # noqa: PLC0415
    from tests.harness.market import SyntheticMarket  # noqa: PLC0415

    market = SyntheticMarket(3, date(2024, 1, 2), date(2024, 1, 5))
    broker = SimulatedBrokerage(market, 100_000.0)
    if security_type == "index":
        underlying = Symbol.create("SPX", SecurityType.INDEX)
    else:
        underlying = Symbol.create("SPY", SecurityType.EQUITY)
    return market, broker, underlying


def _contract(underlying: Any, right: Any, strike: float, expiry: date, european: bool = False) -> Any:
    from tests.harness.lean_stub.enums import OptionStyle  # noqa: PLC0415
    from tests.harness.lean_stub.symbols import Symbol  # noqa: PLC0415

    style = OptionStyle.EUROPEAN if european else OptionStyle.AMERICAN
    expiry_at = datetime.combine(expiry, time())
    if european:
        return Symbol.create_option(underlying, "SPXW", "usa", style, right, strike, expiry_at)
    return Symbol.create_option(underlying, "usa", style, right, strike, expiry_at)


def _last_step_of(market: Any, day: date) -> int:
    return max(step.index for step in market.steps if step.time.date() == day)


def test_expiry_of_an_itm_short_put_is_an_assignment_that_delivers_shares_at_the_strike() -> None:
    """DefaultExerciseModel.OptionExercise: the option fills at 0 for the exercise order's quantity (-holding),
    `IsAssignment` when in the money and short; physical delivery adds a fill of the underlying at the strike
    for Option.GetExerciseQuantity (put: +order quantity x 100)."""
    from tests.harness.brokerage import BrokerHolding  # noqa: PLC0415
    from tests.harness.lean_stub.enums import OptionRight  # noqa: PLC0415

    market, broker, spy = _exercise_rig()
    friday = date(2024, 1, 5)
    index = _last_step_of(market, friday)
    close = market.steps[index].price
    put = _contract(spy, OptionRight.PUT, float(round(close) + 5), friday)
    broker.holdings[put] = BrokerHolding(-2, 1.5)
    cash = broker.cash
    (update,) = [u for u in broker.settle_expiries(index) if u.kind == "exercise"]
    exercise = update.exercise
    assert exercise is not None and exercise.quantity == 2 and update.price == 0.0
    assert exercise.in_the_money and exercise.is_assignment
    assert exercise.underlying == spy and exercise.underlying_quantity == 200
    assert broker.holdings[spy].quantity == 200 and broker.holdings[spy].average_price == put.id.strike_price
    assert put not in broker.holdings
    assert broker.cash == cash - 200 * put.id.strike_price


def test_expiry_out_of_the_money_fills_at_zero_and_delivers_nothing() -> None:
    """Option.IsAutoExercised needs an intrinsic value of at least 0.01 at the underlying's close; otherwise
    the exercise order only closes the contract at 0 ("OTM")."""
    from tests.harness.brokerage import BrokerHolding  # noqa: PLC0415
    from tests.harness.lean_stub.enums import OptionRight  # noqa: PLC0415

    market, broker, spy = _exercise_rig()
    friday = date(2024, 1, 5)
    index = _last_step_of(market, friday)
    close = market.steps[index].price
    call = _contract(spy, OptionRight.CALL, float(round(close) + 10), friday)
    broker.holdings[call] = BrokerHolding(1, 0.3)
    cash = broker.cash
    (update,) = broker.settle_expiries(index)
    assert update.exercise is not None and not update.exercise.in_the_money and not update.exercise.is_assignment
    assert update.exercise.quantity == -1 and update.exercise.underlying is None
    assert broker.holdings == {} and broker.cash == cash


def test_index_option_expiring_in_the_money_is_cash_settled() -> None:
    """IndexOption: SettlementType.Cash; OptionPortfolioModel.ProcessCloseTradeProfit credits
    -intrinsic x 100 x order quantity; no shares change hands (DefaultExerciseModel: no second fill)."""
    from tests.harness.brokerage import BrokerHolding  # noqa: PLC0415
    from tests.harness.lean_stub.enums import OptionRight  # noqa: PLC0415

    market, broker, spx = _exercise_rig("index")
    friday = date(2024, 1, 5)
    index = _last_step_of(market, friday)
    close = market.level(index, "SPX")  # SPX at its own level (about ten times SPY)
    put = _contract(spx, OptionRight.PUT, float(round(close) + 3), friday, european=True)
    broker.holdings[put] = BrokerHolding(1, 2.0)
    cash = broker.cash
    (update,) = broker.settle_expiries(index)
    exercise = update.exercise
    assert exercise is not None and exercise.in_the_money and not exercise.is_assignment
    assert exercise.underlying is None and broker.holdings == {}
    assert exercise.cash == pytest.approx((put.id.strike_price - close) * 100)
    assert broker.cash == pytest.approx(cash + exercise.cash)


def test_early_assignment_of_a_deep_itm_short_near_expiry_once_an_hour() -> None:
    """BacktestingBrokerage.ProcessAssignmentOrders scans at most once an hour; DefaultOptionAssignmentModel
    assigns an American short within 4 days of expiry that is more than 5 % in the money, in full, with the
    tag "Simulated option assignment before expiration"; far from expiry nothing is assigned."""
    from tests.harness.brokerage import ASSIGNMENT_TAG, BrokerHolding  # noqa: PLC0415
    from tests.harness.lean_stub.enums import OptionRight  # noqa: PLC0415

    market, broker, spy = _exercise_rig()
    index = next(step.index for step in market.steps if step.time.date() == date(2024, 1, 3))
    close = market.steps[index].price
    near = _contract(spy, OptionRight.PUT, float(round(close * 1.08)), date(2024, 1, 5))
    far = _contract(spy, OptionRight.PUT, float(round(close * 1.08)), date(2024, 2, 16))
    shallow = _contract(spy, OptionRight.PUT, float(round(close * 1.02)), date(2024, 1, 5))
    for symbol in (near, far, shallow):
        broker.holdings[symbol] = BrokerHolding(-1, 1.0)
    (update,) = broker.simulate_assignments(index)
    assert update.symbol == near and update.exercise is not None and update.exercise.tag == ASSIGNMENT_TAG
    assert update.exercise.is_assignment and update.exercise.underlying_quantity == 100
    assert far in broker.holdings and shallow in broker.holdings and near not in broker.holdings
    broker.holdings[near] = BrokerHolding(-1, 1.0)
    assert broker.simulate_assignments(index + 1) == []  # the same hour: no second scan


def test_exercise_events_come_one_at_a_time_under_one_order_id() -> None:
    """BrokerageTransactionHandler.EmitOptionNotificationEvents: a new OPTION_EXERCISE order; each event is
    applied to the portfolio, then handled: the option at 0 (is_assignment), then the underlying at the strike
    under the same order id (is_assignment False, IsInTheMoney True)."""
    from tests.harness.lean_stub.enums import OptionRight, OrderType  # noqa: PLC0415
    from tests.harness.simulation import Deployment  # noqa: PLC0415
    from tests.test_harness_lean import FRIDAY, MARKET, Recorder  # noqa: PLC0415

    class SellsAnItmPut(Recorder):
        def on_data(self, data: Any) -> None:
            if not getattr(self, "placed", False):
                self.placed = True
                self.put = self.contract(OptionRight.PUT, 8)
                self.market_order(self.put, -1, tag="short")

        def on_order_event(self, order_event: Any) -> None:
            held = {h.symbol.value: h.quantity for h in self.portfolio.values() if h.invested}
            self.trace.append((order_event.symbol.value, held))
            super().on_order_event(order_event)

    deployment = Deployment(seed=7, start=FRIDAY, end=FRIDAY, algorithm_class=SellsAnItmPut, market=MARKET).run()
    algorithm = deployment.algorithm
    option_event, share_event = [e for e in algorithm.events if e.order_id != algorithm.events[0].order_id]
    order = algorithm.transactions.get_order_by_id(option_event.order_id)
    assert order.type == OrderType.OPTION_EXERCISE and share_event.order_id == option_event.order_id
    assert option_event.fill_price == 0.0 and option_event.fill_quantity == 1 and option_event.is_assignment
    assert option_event.message.startswith("Assigned. Underlying: ")
    assert share_event.symbol.value == "SPY" and share_event.fill_quantity == 100
    assert share_event.fill_price == algorithm.put.id.strike_price and not share_event.is_assignment
    assert share_event.is_in_the_money and share_event.message == "Option Assignment"
    # the first event is handled before the shares are delivered; the second after
    assert "SPY" not in algorithm.trace[-2][1] and algorithm.trace[-1][1]["SPY"] == 100


def test_open_orders_reloaded_at_a_restart_get_new_ids_counted_from_one_in_the_new_process() -> None:
    """Engine/Setup/BrokerageSetupHandler.cs `GetOpenOrders` hands every open brokerage order to
    Engine/TransactionHandlers/BrokerageTransactionHandler.cs `AddOpenOrder`, which sets `order.Id =
    algorithm.Transactions.GetIncrementOrderId()` (Common/Securities/SecurityTransactionManager.cs, a counter of
    the new process starting at 0) and status Submitted; no order event is sent. So ids restart at 1 whatever
    the algorithm id, and the broker id is what stays the same."""

    class Algo(_Spy):
        def on_data(self, data: Any) -> None:
            if not self.portfolio.invested and not self.transactions.get_open_orders() and len(self.seen) == 0:
                self.seen.append("ordered")
                self.market_order(self.spy, 1, asynchronous=True, tag="kept-open")

    plan = CrashPlan()
    counting = _deploy(Algo, faults=FaultPlan(rules={(1, 1): LegFault("never")}), crash_plan=plan)
    after = next(
        p.number for p in counting.crash_plan.points if p.kind == "order-submit" and p.detail == "after kept-open"
    )
    run = _deploy(Algo, faults=FaultPlan(rules={(1, 1): LegFault("never")}), crash_plan=CrashPlan(crash_at=(after,)))
    assert [r.crash is not None for r in run.runs] == [True, False]
    (broker_order,) = [o for o in run.brokerage.orders.values() if o.tag == "kept-open"]
    assert run.runs[1].loaded_open_orders == [(1, broker_order.broker_id)]
    order = run.algorithm.transactions.get_order_by_id(1)
    assert order.status == OrderStatus.SUBMITTED and order.tag == "kept-open"
    assert [e for e in run.algorithm.transactions.events if e.order_id == 1] == []


def test_a_brokerage_refusal_is_an_invalid_order_event_carrying_the_reason() -> None:
    """Engine/TransactionHandlers/BrokerageTransactionHandler.cs `HandleSubmitOrderRequest`: when the brokerage
    does not place the order, `InvalidateOrders(orders, message)` sets each order Invalid and sends an
    OrderEvent with the message (and the algorithm's error log gets it too)."""

    class Algo(_Spy):
        def on_data(self, data: Any) -> None:
            if not self.seen:
                self.seen.append("ordered")
                self.market_order(self.spy, 1, asynchronous=True, tag="refused")

        def on_order_event(self, order_event: Any) -> None:
            self.seen.append((order_event.status, order_event.message))

    run = _deploy(Algo, faults=FaultPlan(rules={(1, 1): LegFault("reject")}))
    invalid = [seen for seen in run.algorithm.seen if isinstance(seen, tuple) and seen[0] == OrderStatus.INVALID]
    assert len(invalid) == 1 and invalid[0][1]  # one Invalid event, with a reason


# -- prices, orders and listings (harness owner: tests/harness/*) ------------------------------------------------


class _AddThenOrder(_Spy):
    """Adds a contract outside the option universe and orders it at once, then again a bar later."""

    def on_data(self, data: Any) -> None:
        if self.time.hour != 10:
            return
        if not self.seen:
            spot = round(self.securities[self.spy].price)
            expiry = datetime.combine(date(2024, 2, 16), time(0, 0))
            self.contract = Symbol.create_option(
                self.spy, "usa", OptionStyle.AMERICAN, OptionRight.PUT, spot - 60.0, expiry
            )
            self.add_option_contract(self.contract)
            security = self.securities[self.contract]
            ticket = self.market_order(self.contract, 1, asynchronous=True)
            self.seen.append((security.price, security.has_data, ticket.status, ticket.message))
        elif len(self.seen) == 1:
            ticket = self.market_order(self.contract, 1, asynchronous=True)
            self.seen.append((self.securities[self.contract].price, True, ticket.status, ticket.message))


def test_an_order_for_a_contract_with_no_price_yet_is_invalid_with_leans_message() -> None:
    """Algorithm/QCAlgorithm.Trading.cs `PreOrderChecksImpl`: `price == 0` -> SecurityPriceZero with
    Messages.QuantConnect.cs `ZeroPriceForSecurity`; a contract added with AddOptionContract is not seeded
    (Common/AlgorithmSettings.cs `SeedInitialPrices` defaults to False), so it has no price before its first slice."""
    algorithm = _deploy(_AddThenOrder, live_mode=False).algorithm
    (price, has_data, status, message), (later_price, _, later_status, _) = algorithm.seen
    assert (price, has_data, status) == (0.0, False, OrderStatus.INVALID)
    assert message == zero_price_message(algorithm.contract)
    assert "has not yet received a bar of data" in message
    assert later_price > 0 and later_status != OrderStatus.INVALID, "a bar later it has data and trades"


def test_seed_initial_prices_gives_a_new_contract_its_last_known_price() -> None:
    """Common/Securities/SecurityService.cs `InitializeSecurity`: with Settings.SeedInitialPrices the new security
    is seeded (AlgorithmUtils.SeedSecurities), so an order right after adding it is accepted."""

    class Seeded(_AddThenOrder):
        def initialize(self) -> None:
            super().initialize()
            self.settings.seed_initial_prices = True

    (price, has_data, status, _), _ = _deploy(Seeded, live_mode=False).algorithm.seen
    assert price > 0 and has_data and status != OrderStatus.INVALID


def test_a_chain_contract_of_the_option_universe_has_data_at_its_slice() -> None:
    """A contract the option universe selected is subscribed and gets the slice's data
    (Common/Securities/Option/OptionFilterUniverse.cs selects it; its quote arrives with the chain)."""

    class Chain(_Spy):
        def on_data(self, data: Any) -> None:
            if self.seen or self.time.hour != 10:
                return
            contract = next(iter(data.option_chains[self.canonical]))
            self.add_option_contract(contract.symbol)
            self.seen.append(self.securities[contract.symbol].price)

    assert _deploy(Chain, live_mode=False).algorithm.seen[0] > 0


def test_no_data_message_matches_lean() -> None:
    """Algorithm/QCAlgorithm.Trading.cs `PreOrderChecksImpl`, OrderResponseErrorCode.SecurityHasNoData."""
    assert NO_DATA_MESSAGE == (
        "There is no data for this symbol yet, please check the security.HasData flag to ensure there is at least "
        "one data point."
    )


def test_backtest_async_orders_are_submitted_inside_the_call_and_filled_at_the_end_of_the_time_step() -> None:
    """Backtest: BrokerageTransactionHandler.AddOrder -> BacktestingTransactionHandler.WaitForOrderSubmission ->
    ProcessPendingRequests -> BacktestingBrokerage.PlaceOrder fires SUBMITTED inside the order call; the fill comes
    from BacktestingBrokerage.Scan in AlgorithmManager's `transactions.ProcessSynchronousEvents()` after OnData of
    the same time step (SecurityTransactionManager.SetLiveMode: MarketOrderFillTimeout zero in backtests)."""

    class Algo(_Spy):
        def on_data(self, data: Any) -> None:
            if self.time.hour != 10 or self.time.minute != 0 or getattr(self, "tickets", None):
                return
            chain = sorted(data.option_chains[self.canonical], key=lambda c: (c.expiry, c.strike))
            for contract in (chain[0], chain[2]):
                self.add_option_contract(contract.symbol)
            self.in_call = True
            legs = [Leg.create(chain[0].symbol, 1), Leg.create(chain[2].symbol, -1)]
            self.tickets = self.combo_market_order(legs, 3, asynchronous=True)
            self.in_call = False
            self.step_time = self.time

        def on_order_event(self, order_event: Any) -> None:
            if order_event.order_id in (1, 2):  # the combo's legs (not the 16:00 expiry of the 0DTE leg)
                self.seen.append((order_event.status, getattr(self, "in_call", False), self.time))

    algorithm = _deploy(Algo, live_mode=False).algorithm
    submitted = [entry for entry in algorithm.seen if entry[0] == OrderStatus.SUBMITTED]
    filled = [entry for entry in algorithm.seen if entry[0] == OrderStatus.FILLED]
    assert len(submitted) == 2 and all(in_call for _, in_call, _ in submitted), "SUBMITTED inside the call"
    assert len(filled) == 2 and all(not in_call for _, in_call, _ in filled), "filled after on_data returned"
    assert {moment for _, _, moment in filled} == {algorithm.step_time}, "in the same time step"


def test_the_exchange_is_closed_at_16_00_and_nothing_fills_on_the_closing_slice() -> None:
    """Common/Securities/MarketHoursSegment.cs `Contains`: `time >= Start && time < End`, so at 16:00 the exchange
    is closed; the fill models fill nothing while it is closed (FillModel/EquityFillModel `IsExchangeOpen`)."""
    assert is_market_open(datetime(2024, 1, 5, 9, 30)) and is_market_open(datetime(2024, 1, 5, 15, 55))
    assert not is_market_open(datetime(2024, 1, 5, 16, 0))

    class AtTheClose(_Spy):
        def on_data(self, data: Any) -> None:
            if self.time.hour == 16 and not self.seen:
                self.seen.append(self.securities[self.spy].exchange.exchange_open)
                self.ticket = self.market_order(self.spy, 10, asynchronous=True)

    deployment = _deploy(AtTheClose, live_mode=False, end=date(2024, 1, 8))
    algorithm = deployment.algorithm
    assert algorithm.seen == [False]
    fill = algorithm.transactions.get_order_by_id(algorithm.ticket.order_id).last_fill_time
    assert fill is not None and fill.date() == date(2024, 1, 8), "filled at the next session, not at 16:00"


def test_set_filter_counts_listed_strikes_around_the_money() -> None:
    """Common/Securities/Option/OptionFilterUniverse.cs `Strikes(minStrike, maxStrike)`: binary search of the
    underlying price among the distinct listed strikes; keeps index+min .. index+max, one less at the top when
    the price is not itself a listed strike. SPY lists $1 strikes near the money and $5 far out; SPX/SPXW $5."""
    spy = SyntheticMarket.strikes(470.3)
    assert {b - a for a, b in pairwise(spy)} == {1.0, 5.0}
    assert 469.0 in spy and 470.0 in spy and 380.0 in spy and 381.0 not in spy
    assert strike_window(spy, 470.3, -3, 3) == (468.0, 473.0)  # 471 is index 0: 468..473 (top - 1)
    assert strike_window(spy, 470.0, -3, 3) == (467.0, 473.0)  # exact: 467..473
    spx = SyntheticMarket.strikes(4703.0, "SPX")
    assert {b - a for a, b in pairwise(spx)} == {5.0}
    assert strike_window(spx, 4703.0, -80, 40) == (4305.0, 4900.0)  # 80 listed strikes = 400 points, not 80


def test_a_5_delta_put_120_days_out_sits_about_20_percent_below_spot() -> None:
    """The synthetic volatility has a put skew, so a 5-delta put 120 days out is 18-22 % below spot at the
    usual 15 % at-the-money vol (the market's level; a flat-vol chain would put it near 13 %)."""
    market = SyntheticMarket(7, FRIDAY, FRIDAY)
    step = market.steps[0]
    expiry = step.time.date() + timedelta(days=120)
    for underlying in ("SPY", "SPX"):
        spot = market.level(0, underlying)
        puts = [market.quote(0, expiry, strike, Right.PUT, underlying) for strike in market.strikes(spot, underlying)]
        five_delta = min(puts, key=lambda quote: abs(quote.delta + 0.05))
        assert 0.18 <= 1 - five_delta.strike / spot <= 0.22, (underlying, five_delta.strike, spot)


def test_spx_has_its_own_level_and_bars_not_vix() -> None:
    """An index's price is its own (SPX about ten times SPY); LEAN's SPX data is the index level, VIX another index."""

    class Spx(QCAlgorithm):
        def initialize(self) -> None:
            self.spx = self.add_index("SPX", Resolution.MINUTE).symbol
            self.vix = self.add_index("VIX", Resolution.MINUTE).symbol
            self.seen: List[Any] = []

        def on_data(self, data: Any) -> None:
            if not self.seen:
                self.seen.append(
                    (data.bars[self.spx].close, self.securities[self.spx].price, self.securities[self.vix].price)
                )

    bar, price, vix = _deploy(Spx, live_mode=False).algorithm.seen[0]
    assert bar == price and 3000 < price < 7000 and price != vix and vix < 100


def test_a_listed_contract_is_never_quoted_at_zero_and_sits_on_its_minimum_tick() -> None:
    """Data/symbol-properties/symbol-properties-database.csv `usa,[*],option,...,0.01` (SPY options tick 0.01);
    Common/Securities/IndexOption/IndexOptionSymbolProperties.cs `MinimumPriceVariationForPrice`: SPXW 0.05 below
    $3, 0.10 from $3."""
    market = SyntheticMarket(7, FRIDAY, FRIDAY)
    for underlying, ticks in (("SPY", (0.01,)), ("SPX", (0.05, 0.10))):
        chain = market.chain(0, underlying=underlying)
        assert all(quote.bid > 0 and quote.ask > quote.bid and quote.price > 0 for quote in chain)
        for quote in chain:
            tick = minimum_tick(underlying, quote.price)
            assert tick in ticks
            assert abs(quote.bid / tick - round(quote.bid / tick)) < 1e-6, (underlying, quote.bid, tick)
        cheapest = min(chain, key=lambda quote: quote.price)
        assert cheapest.bid == ticks[0]


def test_live_the_underlying_of_an_option_is_seeded_and_a_held_contract_has_its_holding_price() -> None:
    """Algorithm/QCAlgorithm.Universe.cs: live, an option's underlying without data is seeded;
    Engine/Setup/BrokerageSetupHandler.cs seeds each held security with a TradeBar at the holding's market price
    (a price, no bid or ask until its first quote). Both hold in on_warmup_finished, before the first slice."""

    class Algo(_Spy):
        starts = 0

        def initialize(self) -> None:
            super().initialize()
            Algo.starts += 1

        def on_warmup_finished(self) -> None:
            held = [h.symbol for h in self.portfolio.values() if h.invested]
            quotes = [(self.securities[s].price, self.securities[s].bid_price) for s in held]
            self.seen.append((self.securities[self.spy].price, quotes))

        def on_data(self, data: Any) -> None:
            if Algo.starts == 1 and self.time.hour == 10 and self.time.minute == 0:
                contract = next(iter(data.option_chains[self.canonical])).symbol
                self.add_option_contract(contract)
                self.market_order(contract, 1, asynchronous=True)  # the crash plan ends the process right after

    plan = CrashPlan(crash_at=(2,), kinds=("order-submit",))
    deployment = _deploy(Algo, end=date(2024, 1, 8), crash_plan=plan)
    assert len(deployment.runs) == 2
    spot, held = deployment.algorithm.seen[0]
    assert spot > 0, "live: the option's underlying is seeded before the first slice"
    assert len(held) == 1 and held[0][0] > 0 and held[0][1] == 0.0, "held: a price, no quote yet"


# -- combo limit orders (Algorithm/QCAlgorithm.Trading.cs `ComboLimitOrder`; Common/Orders/Fills/FillModel.cs
#    `ComboLimitFill`; Brokerages/Backtesting/BacktestingBrokerage.cs `Scan`, `UpdateOrder`, `CancelOrder`) --


class _PutSpread(_Spy):
    """Sells a put spread (short the higher strike) as a combo limit at `at`, two units; records every event with
    the step time and the step index."""

    at = (10, 0)
    limit = -0.01
    quantity = 2

    def on_data(self, data: Any) -> None:
        if (self.time.hour, self.time.minute) != self.at or getattr(self, "tickets", None):
            return
        puts = [
            c
            for c in data.option_chains[self.canonical]
            if c.right == OptionRight.PUT and c.expiry.date() > self.time.date()
        ]
        expiry = min(c.expiry for c in puts)
        chosen = sorted((c for c in puts if c.expiry == expiry), key=lambda c: c.strike)
        self.short, self.long = chosen[-3].symbol, chosen[-6].symbol
        for symbol in (self.short, self.long):
            self.add_option_contract(symbol)
        legs = [Leg.create(self.short, -1), Leg.create(self.long, 1)]
        self.placed = (self.time, self._step_index)
        self.tickets = self.combo_limit_order(legs, self.quantity, self.limit, asynchronous=True, tag="spread")
        self.on_placed()

    def on_placed(self) -> None:
        pass

    def on_order_event(self, order_event: Any) -> None:
        self.seen.append((order_event.order_id, order_event.status, self.time, self._step_index, order_event))


def _fills(algorithm: Any) -> List[Any]:
    """The fills of the spread's two legs (order ids 1 and 2; later ids are expiries)."""
    return [entry for entry in algorithm.seen if entry[1] == OrderStatus.FILLED and entry[0] in (1, 2)]


def test_combo_limit_fills_from_the_next_step_each_leg_at_its_own_side_when_the_sum_crosses() -> None:
    """BacktestingBrokerage.Scan skips a non-market order on the bar it was placed; FillModel.ComboLimitFill prices
    each leg from its own direction's quote (GetPrices: ask for a buy leg, bid for a sell leg), sums price x ratio
    and, for a buying group (combo quantity > 0), fills every leg completely when the sum is below the limit, each
    at the leg's price (not at the limit)."""
    deployment = _deploy(_PutSpread, live_mode=False)
    algorithm = deployment.algorithm
    placed_index = algorithm.placed[1]
    fills = _fills(algorithm)
    assert {entry[0] for entry in fills} == {1, 2} and len(fills) == 2, "both legs, all at once"
    step = {entry[3] for entry in fills}
    assert step == {placed_index + 1}, "not on the bar it was placed, on the next one"
    index = placed_index + 1
    _, short_bid, _ = deployment.brokerage.quote(algorithm.short, index)
    _, _, long_ask = deployment.brokerage.quote(algorithm.long, index)
    by_id = {entry[0]: entry[4] for entry in fills}
    assert by_id[1].fill_price == short_bid and by_id[1].fill_quantity == -2
    assert by_id[2].fill_price == long_ask and by_id[2].fill_quantity == 2
    assert -short_bid + long_ask < -0.01, "the credit was more than the limit asked"
    assert algorithm.tickets[0].order_type.name == "COMBO_LIMIT"


def test_a_credit_combo_limit_does_not_fill_while_the_credit_is_below_the_limit() -> None:
    """FillModel.ComboLimitFill, buying group: `currentPrice < limitPrice` strictly; a limit asking more credit
    than the spread's width never fills (the order stays SUBMITTED, nothing held)."""

    class Greedy(_PutSpread):
        limit = -50.0

    deployment = _deploy(Greedy, live_mode=False)
    algorithm = deployment.algorithm
    assert _fills(algorithm) == []
    assert [entry[1] for entry in algorithm.seen] == [OrderStatus.SUBMITTED, OrderStatus.SUBMITTED]
    assert deployment.brokerage.holding_quantities() == {}


def test_a_selling_combo_group_compares_the_sum_from_above() -> None:
    """FillModel.ComboLimitFill, selling group (combo quantity < 0): leg ratio = leg quantity / combo quantity,
    fills when the sum is strictly above the limit, each leg at the High of its own side's bar."""

    class Seller(_PutSpread):
        quantity = -2  # legs (-1 short, +1 long) x -2: buys the higher strike, sells the lower
        limit = 0.01  # ratios -1/+1: -ask(higher) + bid(lower) is negative, never above 0.01

    deployment = _deploy(Seller, live_mode=False)
    assert _fills(deployment.algorithm) == []

    class CheapSeller(Seller):
        limit = -50.0

    deployment = _deploy(CheapSeller, live_mode=False)
    algorithm = deployment.algorithm
    by_id = {entry[0]: entry[4] for entry in _fills(algorithm)}
    index = algorithm.placed[1] + 1
    _, _, higher_ask = deployment.brokerage.quote(algorithm.short, index)
    _, lower_bid, _ = deployment.brokerage.quote(algorithm.long, index)
    assert by_id[1].fill_quantity == 2 and by_id[1].fill_price == higher_ask
    assert by_id[2].fill_quantity == -2 and by_id[2].fill_price == lower_bid


def test_combo_limit_order_refuses_a_zero_limit_leg_limits_and_legs_sharing_a_divisor() -> None:
    """QCAlgorithm.ComboLimitOrder: ArgumentException "ComboLimitOrder requires a limit price" for 0, "...does not
    support limit prices for individual legs" for a leg with OrderPrice; SubmitComboOrder's CheckComboOrderSizing
    refuses legs whose quantities share a divisor. Nothing reaches the broker."""

    class Refused(_PutSpread):
        def on_placed(self) -> None:
            for legs, limit in (
                ([Leg.create(self.short, -1), Leg.create(self.long, 1)], 0.0),
                ([Leg.create(self.short, -1, 1.5), Leg.create(self.long, 1)], -1.0),
                ([Leg.create(self.short, -2), Leg.create(self.long, 2)], -1.0),
            ):
                try:
                    self.combo_limit_order(legs, 1, limit, asynchronous=True)
                except ValueError as error:
                    self.seen.append(str(error))

    deployment = _deploy(Refused, live_mode=False)
    errors = [entry for entry in deployment.algorithm.seen if isinstance(entry, str)]
    assert errors[0] == "ComboLimitOrder requires a limit price"
    assert errors[1] == "ComboLimitOrder does not support limit prices for individual legs"
    assert errors[2].startswith("The global combo quantity should be used")
    assert deployment.brokerage.submissions == 1, "only the spread itself was placed"


def test_a_combo_limit_price_is_rounded_half_to_even_to_the_smallest_leg_increment() -> None:
    """BrokerageTransactionHandler.RoundOrderPrices, case ComboLimit: the smallest of the legs' minimum price
    variations at the leg order's Price (0 at submission), `Math.Round` (half to even): SPY options 0.01
    (symbol properties `usa,[*],option`), SPX/SPXW options 0.05 (IndexOptionSymbolProperties below $3)."""
    from tests.harness.transactions import combo_limit_increment, round_limit_price  # noqa: PLC0415

    spy = Symbol.create("SPY", SecurityType.EQUITY)
    spx = Symbol.create("SPX", SecurityType.INDEX)
    spy_put = _contract(spy, OptionRight.PUT, 470.0, date(2024, 1, 12))
    spx_put = _contract(spx, OptionRight.PUT, 4700.0, date(2024, 1, 12), european=True)
    assert combo_limit_increment([spy_put, spy_put]) == 0.01
    assert combo_limit_increment([spx_put, spx_put]) == 0.05
    assert round_limit_price(-1.005, 0.01) == -1.0 and round_limit_price(-1.015, 0.01) == -1.02
    assert round_limit_price(-1.125, 0.05) == -1.1 and round_limit_price(-1.175, 0.05) == -1.2

    class Odd(_PutSpread):
        limit = -0.015

    group = _deploy(Odd, live_mode=False).algorithm.transactions.get_order_by_id(1).group_order_manager
    assert group.limit_price == -0.02


def test_updating_a_combo_limit_moves_the_whole_group_and_a_closed_order_refuses_updates() -> None:
    """ComboLimitOrder.ApplyUpdateOrderRequest sets GroupOrderManager.LimitPrice (every leg's), rounded again
    (RoundOrderPrices); BacktestingBrokerage.UpdateOrder sends UPDATE_SUBMITTED for the updated order; the fill
    follows at the new limit, in the same step (Scan's same-bar skip compares the order's unchanged Time). A
    filled order refuses: Messages.OrderResponse `InvalidStatus`."""

    class Walker(_PutSpread):
        limit = -50.0

        def on_data(self, data: Any) -> None:
            super().on_data(data)
            if getattr(self, "tickets", None) and self.time.hour == 11 and not hasattr(self, "moved"):
                self.moved = self.tickets[1].update_limit_price(-0.013)
                self.moved_at = self._step_index
            if self.time.hour == 12 and not hasattr(self, "late"):
                self.late = self.tickets[0].update_limit_price(-0.5)

    deployment = _deploy(Walker, live_mode=False)
    algorithm = deployment.algorithm
    assert algorithm.moved.is_success
    updates = [entry for entry in algorithm.seen if entry[1] == OrderStatus.UPDATE_SUBMITTED]
    assert [entry[0] for entry in updates] == [2], "one event, for the leg whose ticket was updated"
    assert algorithm.transactions.get_order_by_id(1).group_order_manager.limit_price == -0.01
    # the update keeps the order's Time, so Scan (after on_data of the same step) fills it at once
    assert {entry[3] for entry in _fills(algorithm)} == {algorithm.moved_at}
    assert not algorithm.late.is_success
    assert algorithm.late.error_message == "Unable to update order with id 1 because it already has Filled status."


def test_canceling_one_leg_of_a_combo_cancels_every_leg_of_its_group() -> None:
    """BacktestingBrokerage.CancelOrder: `TryGetGroupOrders`, then each order of the group is removed from the
    pending orders with its own CANCELED event."""

    class Cancel(_PutSpread):
        limit = -50.0

        def on_placed(self) -> None:
            self.transactions.cancel_order(self.tickets[0].order_id)

    algorithm = _deploy(Cancel, live_mode=False).algorithm
    canceled = [entry[0] for entry in algorithm.seen if entry[1] == OrderStatus.CANCELED]
    assert canceled == [1, 2]
    assert all(ticket.status == OrderStatus.CANCELED for ticket in algorithm.tickets)


def test_a_combo_limit_has_no_exchange_open_check_and_can_fill_on_the_16_00_slice() -> None:
    """FillModel.ComboLimitFill checks only for stale data, not `IsExchangeOpen` (the market fills do), so an order
    placed on the 15:55 slice fills on the 16:00 one."""

    class Late(_PutSpread):
        at = (15, 55)

    algorithm = _deploy(Late, live_mode=False, end=date(2024, 1, 8)).algorithm
    assert {entry[2] for entry in _fills(algorithm)} == {datetime(2024, 1, 5, 16, 0)}


def test_a_backtest_limit_update_is_handled_after_the_handler_returns_before_the_same_steps_fill_scan() -> None:
    """BrokerageTransactionHandler.UpdateOrder queues the request (success at once); BacktestingTransactionHandler
    .ProcessSynchronousEvents runs ProcessPendingRequests (HandleUpdateOrderRequest -> UPDATE_SUBMITTED), then the
    brokerage's Scan: the event comes after on_data returns, and the new limit already fills in that step."""

    class Deferred(_PutSpread):
        limit = -50.0

        def on_data(self, data: Any) -> None:
            super().on_data(data)
            if getattr(self, "tickets", None) and self.time.hour == 11 and not hasattr(self, "moved"):
                self.in_call = True
                self.moved = self.tickets[0].update_limit_price(-0.01)
                self.in_call = False
                self.moved_at = self._step_index

        def on_order_event(self, order_event: Any) -> None:
            super().on_order_event(order_event)
            if order_event.status == OrderStatus.UPDATE_SUBMITTED:
                self.update_seen = (getattr(self, "in_call", False), self._step_index)

    algorithm = _deploy(Deferred, live_mode=False).algorithm
    assert algorithm.moved.is_success
    assert algorithm.update_seen == (False, algorithm.moved_at), "after the handler, in the same step"
    assert {entry[3] for entry in _fills(algorithm)} == {algorithm.moved_at}


# -- option filter functions (option.set_filter(function)) --------------------------------------------------------


def _universe(
    day: date = FRIDAY, local_time: datetime | None = None, price: float | None = 470.3
) -> option_universe.OptionFilterUniverse:
    """The SPY universe data listed on `day` (strikes around 470.3), selected at `local_time`."""
    canonical = Symbol.create_canonical_option(Symbol.create("SPY", SecurityType.EQUITY))
    data = [
        option_universe.OptionUniverse(
            option_universe.contract_symbol(canonical, expiry, strike, right, OptionStyle.AMERICAN)
        )
        for expiry in option_expiries(day)
        for strike in SyntheticMarket.strikes(470.3)
        for right in (Right.PUT, Right.CALL)
    ]
    underlying = None if price is None else option_universe.UnderlyingData(canonical.underlying, price)
    return option_universe.OptionFilterUniverse(data, underlying, local_time or datetime.combine(day, time()))


def _days(universe: option_universe.OptionFilterUniverse, day: date = FRIDAY) -> set[int]:
    return {(item.id.date.date() - day).days for item in universe}


def test_filter_function_returning_none_keeps_the_universe_its_calls_narrowed() -> None:
    """Common/Securities/Option/Option.cs `SetFilter(PyObject)`: "A None result is allowed: filter methods modify
    the universe in place, returning it is only necessary for chaining"."""
    universe = _universe()

    def narrow(u: option_universe.OptionFilterUniverse) -> None:
        u.puts_only()

    chosen = option_universe.apply_filter_function(narrow, universe)
    assert chosen and all(symbol.id.option_right == OptionRight.PUT for symbol in chosen)
    assert len(chosen) == len(_universe().data) // 2


def test_filter_function_returning_symbols_keeps_those_of_the_universe_and_anything_else_raises() -> None:
    """Option.cs `SetFilter(PyObject)`: a list of Symbols -> `optionUniverse.WhereContains(list)` (a Symbol not in
    the universe is not added); another result type -> ArgumentException ("please return either a
    OptionFilterUniverse or a list of symbols")."""
    universe = _universe()
    first, second = universe.data[0].symbol, universe.data[1].symbol
    outsider = Symbol.create_option("SPY", "usa", OptionStyle.AMERICAN, OptionRight.CALL, 1.0, datetime(2030, 1, 18))
    assert option_universe.apply_filter_function(lambda u: [second, first, outsider], universe) == [first, second]
    with pytest.raises(ValueError, match="OptionFilterUniverse or a list of symbols"):
        option_universe.apply_filter_function(lambda u: 42, _universe())


def test_filter_universe_calls_narrow_in_place_one_after_the_other() -> None:
    """Common/Securities/ContractSecurityFilterUniverse.cs: each filter assigns `Data` and returns `(T)this`;
    OptionFilterUniverse.cs `Strikes` counts the distinct strikes of the data it is given (all expiries, both
    rights when it comes first)."""
    universe = _universe()
    result = universe.strikes(-3, 3).expiration(0, 0)
    assert result is universe
    assert {item.id.strike_price for item in universe} == {468.0, 469.0, 470.0, 471.0, 472.0, 473.0}
    assert _days(universe) == {0}


def test_expiration_counts_days_from_the_next_trading_day_when_selected_on_a_weekend() -> None:
    """OptionFilterUniverse.cs `AdjustExpirationReferenceDate`: "Selection for Mondays happen on Friday midnight
    (Saturday start)": a closed LocalTime date moves to the next trading day before Expiration adds its days."""
    monday = date(2024, 1, 8)
    saturday = datetime(2024, 1, 6)
    universe = _universe(monday, local_time=saturday).expiration(0, 0)
    assert {item.id.date.date() for item in universe} == {monday}
    universe = _universe(monday, local_time=saturday).expiration(timedelta(days=1), timedelta(days=1))
    assert {item.id.date.date() for item in universe} == {date(2024, 1, 9)}


def test_contracts_selector_gets_the_filtered_data_and_its_symbols_become_the_universe() -> None:
    """ContractSecurityFilterUniverse.cs `Contracts(PyObject)`: a callable is the selector
    Func<IEnumerable<OptionUniverse>, IEnumerable<Symbol>>, given the data the filters before it left
    ("the already filtered list"); its result sets `AllSymbols`. Data items convert to their Symbol
    (OptionUniverse.cs implicit operator Symbol; Algorithm.Python/OptionUniverseFilterOptionsDataRegressionAlgorithm.py
    returns data items)."""
    seen: list[int] = []

    def selector(items: list[Any]) -> list[Any]:
        seen.append(len(items))
        return [item for item in items if item.id.strike_price == 470.0] + [items[0].symbol]

    universe = _universe().expiration(0, 0)
    before = len(universe.data)
    universe.contracts(selector)
    assert seen == [before]
    assert {item.id.strike_price for item in universe} == {470.0, universe.data[-1].id.strike_price}
    assert len(universe.data) == 3
    with pytest.raises(ValueError, match="not a Symbol"):
        _universe().contracts(lambda items: [1.5])


def test_strikes_changes_nothing_without_underlying_data() -> None:
    """OptionFilterUniverse.cs `Strikes`: `if (UnderlyingInternal == null) return this;`."""
    universe = _universe(price=None)
    count = len(universe.data)
    assert len(universe.strikes(-1, 1).data) == count


def test_puts_only_and_calls_only_keep_one_right() -> None:
    """OptionFilterUniverse.cs `CallsOnly`/`PutsOnly`: Contracts(where Symbol.ID.OptionRight is Call/Put)."""
    assert {item.id.option_right for item in _universe().puts_only()} == {OptionRight.PUT}
    assert {item.id.option_right for item in _universe().calls_only()} == {OptionRight.CALL}


def test_weekly_and_daily_expiries_are_in_the_universe_by_default() -> None:
    """ContractSecurityFilterUniverse.cs `DefaultExpirationType = Standard | Weekly` and `ApplyTypesFilter`
    keeps every contract for it (`IncludeWeeklys` is obsolete: weeklys are included by default)."""
    chosen = option_universe.apply_filter_function(lambda u: u.expiration(0, 10), _universe())
    assert {(symbol.id.date.date() - FRIDAY).days for symbol in chosen} == {0, 3, 4, 5, 6, 7}


def test_exchange_hours_open_dates_and_the_next_trading_day() -> None:
    """Common/Securities/SecurityExchangeHours.cs `IsDateOpen(localDateTime)` (a day with regular hours) and
    `GetNextTradingDay(date)` (the first open date after it, the time of day kept)."""
    hours = ExchangeHours()
    assert hours.is_date_open(datetime(2024, 1, 5)) and not hours.is_date_open(datetime(2024, 1, 6))
    assert not hours.is_date_open(date(2024, 1, 15))  # Martin Luther King Jr. Day
    assert hours.get_next_trading_day(datetime(2024, 1, 5)) == datetime(2024, 1, 8)
    assert hours.get_next_trading_day(datetime(2024, 1, 13)) == datetime(2024, 1, 16)


def test_a_filter_function_selects_once_a_day_at_the_midnight_ending_the_previous_trading_day() -> None:
    """Common/Data/UniverseSelection/OptionChainUniverse.cs `SelectSymbols` (Refresh with the universe data's
    underlying and the selection's local time, then the filter); ContractSecurityFilterUniverse.cs
    `OnlyApplyFilterAtMarketOpen` ("filters ... only applied daily"). The chain holds the selected contracts
    that are listed at the slice, and nothing else."""

    class Filtered(QCAlgorithm):
        def initialize(self) -> None:
            self.add_equity("SPY", Resolution.MINUTE)
            option = self.add_option("SPY", Resolution.MINUTE)
            option.set_filter(self.universe_filter)
            self.canonical = option.symbol
            self.calls: List[Any] = []
            self.chains: List[Any] = []

        def universe_filter(self, universe: Any) -> Any:
            self.calls.append((universe.local_time, universe.underlying.price))
            return (
                universe.strikes(-2, 2)
                .expiration(0, 3)
                .contracts(lambda items: [item for item in items if item.id.option_right == OptionRight.CALL])
            )

        def on_data(self, data: Any) -> None:
            chain = data.option_chains.get(self.canonical)
            self.chains.append((self.time, sorted((c.expiry.date(), c.strike) for c in chain)))
            for contract in chain:
                assert contract.right == OptionRight.CALL

    deployment = _deploy(Filtered, live_mode=False, end=date(2024, 1, 8))
    assert deployment.runtime_error is None
    algorithm = deployment.algorithm
    assert [local for local, _ in algorithm.calls] == [datetime(2024, 1, 5), datetime(2024, 1, 6)]
    # before 16:00 (at the close today's expiry stops trading and leaves the chain)
    friday = [chain for moment, chain in algorithm.chains if moment.date() == FRIDAY and moment.hour < 16]
    assert len({tuple(chain) for chain in friday}) == 1, "one selection all day, whatever the price does"
    assert {expiry for expiry, _ in friday[0]} == {FRIDAY, date(2024, 1, 8)}
    monday = [chain for moment, chain in algorithm.chains if moment.date() == date(2024, 1, 8)]
    assert {expiry for expiry, _ in monday[0]} == {
        date(2024, 1, 8),
        date(2024, 1, 9),
        date(2024, 1, 10),
        date(2024, 1, 11),
    }
    assert algorithm.calls[1][1] == MARKET.level(len([s for s in MARKET.steps if s.time.date() == FRIDAY]) - 1)
