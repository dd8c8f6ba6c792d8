"""The harness follows LEAN (commit 24863901deffa9ec7985e21ef8fbdb0258efb9e4): one test per modelled behaviour,
named after it, each naming the LEAN file and member it follows. Shared by everyone: append your own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, List

import pytest

from tests.harness.lean_stub.algorithm import QCAlgorithm, check_combo_order_sizing
from tests.harness.lean_stub.enums import Resolution, SecurityType
from tests.harness.lean_stub.orders import Leg
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
