"""The harness follows LEAN: scheduling, order events and their order, restarts, lazy chain
(each LEAN file and member is named in the harness module's docstring)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, List, Tuple

import pytest

from tests.harness.faults import CrashPlan, FaultPlan, LegFault, SimulatedCrash
from tests.harness.lean_stub.algorithm import QCAlgorithm
from tests.harness.lean_stub.enums import OptionRight, OptionStyle, OrderStatus, Resolution
from tests.harness.lean_stub.orders import Leg
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.simulation import Deployment

FRIDAY = date(2024, 1, 5)
MARKET = SyntheticMarket(7, FRIDAY, date(2024, 1, 12))


def deploy(cls: type, end: date = date(2024, 1, 8), **kwargs: Any) -> Deployment:
    return Deployment(seed=7, start=FRIDAY, end=end, algorithm_class=cls, market=MARKET, **kwargs).run()


class Recorder(QCAlgorithm):
    """Subscribes SPY + options; records what happened. Subclasses add behaviour."""

    def initialize(self) -> None:
        self.spy = self.add_equity("SPY", Resolution.MINUTE).symbol
        option = self.add_option("SPY", Resolution.MINUTE)
        option.set_filter(-10, 10, timedelta(0), timedelta(10))
        self.canonical = option.symbol
        self.trace: List[Tuple[str, Any]] = []
        self.events: List[Any] = []

    def contract(self, right: OptionRight, offset: int) -> Symbol:
        strike = float(round(self.securities[self.spy].price) + offset)
        expiry = datetime.combine(self.time.date(), datetime.min.time())
        symbol = Symbol.create_option(self.spy, "usa", OptionStyle.AMERICAN, right, strike, expiry)
        self.add_option_contract(symbol)
        return symbol

    def on_order_event(self, order_event: Any) -> None:
        self.events.append(order_event)


def test_every_day_includes_weekends_and_every_5_minutes_fires_288_times_a_day() -> None:
    class Algo(Recorder):
        def initialize(self) -> None:
            super().initialize()
            self.schedule.on(self.date_rules.every_day(), self.time_rules.every(timedelta(minutes=5)), self.tick)

        def tick(self) -> None:
            self.trace.append(("tick", self.time))

    deployment = deploy(Algo)
    per_day = Counter(moment.date() for _, moment in deployment.algorithm.trace)
    assert per_day[date(2024, 1, 6)] == 288 and per_day[date(2024, 1, 7)] == 288  # Saturday, Sunday
    assert per_day[date(2024, 1, 8)] == 288
    assert per_day[FRIDAY] == 15 * 12  # started at 09:00: earlier occurrences are skipped
    assert deployment.algorithm.trace[-1][1] == datetime(2024, 1, 8, 23, 55)


def test_events_fire_in_time_order_before_on_data_with_time_set_to_the_event() -> None:
    class Algo(Recorder):
        def initialize(self) -> None:
            super().initialize()
            self.schedule.on(self.date_rules.every_day(), self.time_rules.at(9, 37), lambda: self.mark("b"))
            self.schedule.on(self.date_rules.every_day(), self.time_rules.at(9, 37), lambda: self.mark("c"))
            self.schedule.on(self.date_rules.every_day(), self.time_rules.at(9, 40), lambda: self.mark("at-slice"))

        def mark(self, name: str) -> None:
            self.trace.append((name, self.time))

        def on_data(self, data: Any) -> None:
            if self.time.date() == FRIDAY and self.time.hour == 9 and self.time.minute <= 40:
                self.trace.append(("on_data", self.time))

    trace = deploy(Algo, end=FRIDAY).algorithm.trace
    assert [name for name, _ in trace] == ["on_data", "b", "c", "at-slice", "on_data"]
    assert trace[1][1] == datetime(2024, 1, 5, 9, 37)  # no data at 09:37: time is the event's own
    assert trace[3][1] == trace[4][1] == datetime(2024, 1, 5, 9, 40)


def test_scheduled_callback_exception_stops_the_algorithm_without_restart() -> None:
    class Algo(Recorder):
        def initialize(self) -> None:
            super().initialize()
            self.schedule.on(self.date_rules.every_day(), self.time_rules.at(10, 0), self.boom)

        def boom(self) -> None:
            raise ValueError("bad callback")

    deployment = deploy(Algo)
    assert deployment.runtime_error is not None and "bad callback" in str(deployment.runtime_error)
    assert len(deployment.runs) == 1 and deployment.runs[0].ended_at == datetime(2024, 1, 5, 10, 0)


class ComboOnce(Recorder):
    asynchronous = False

    def on_data(self, data: Any) -> None:
        if getattr(self, "placed", False):
            return
        self.placed = True
        legs = [Leg.create(self.contract(OptionRight.PUT, -5), -1), Leg.create(self.contract(OptionRight.PUT, -10), 1)]
        self.in_call = True
        self.tickets = self.combo_market_order(legs, 2, asynchronous=self.asynchronous, tag="G-1")
        self.in_call = False

    def on_order_event(self, order_event: Any) -> None:
        held = {h.symbol.value: h.quantity for h in self.portfolio.values() if h.invested}
        self.trace.append((order_event.status, (order_event.order_id, order_event.id, dict(held), self.in_call)))
        super().on_order_event(order_event)


def test_sync_combo_fills_reentrantly_all_legs_applied_before_any_event() -> None:
    deployment = deploy(ComboOnce, end=FRIDAY)
    algorithm = deployment.algorithm
    statuses = [status for status, _ in algorithm.trace][:4]  # then the two expiry events at the close
    assert statuses == [OrderStatus.SUBMITTED, OrderStatus.SUBMITTED, OrderStatus.FILLED, OrderStatus.FILLED]
    fills = [detail for status, detail in algorithm.trace[:4] if status == OrderStatus.FILLED]
    assert all(in_call for *_, in_call in fills)  # before combo_market_order returned
    assert [(order_id, event_id) for order_id, event_id, *_ in fills] == [(1, 2), (2, 2)]
    first_fill_holdings = fills[0][2]
    assert sorted(first_fill_holdings.values()) == [-2, 2]  # both legs already in the portfolio
    assert all(ticket.tag == "G-1" for ticket in algorithm.tickets)


def test_async_combo_fills_at_the_next_step() -> None:
    class Algo(ComboOnce):
        asynchronous = True

    algorithm = deploy(Algo, end=FRIDAY).algorithm
    assert [status for status, _ in algorithm.trace][:2] == [OrderStatus.SUBMITTED, OrderStatus.SUBMITTED]
    assert not any(in_call for _, (*_, in_call) in algorithm.trace)
    fills = [e for e in algorithm.events if e.status == OrderStatus.FILLED and e.order_id in (1, 2)]
    assert {event.utc_time for event in fills} == {datetime(2024, 1, 5, 14, 40)}  # placed 09:35, filled 09:40 ET


def test_combo_is_all_or_nothing_without_faults_but_legs_split_with_a_fault_plan() -> None:
    faults = FaultPlan({(1, 1): LegFault("partial", fraction=0.5, delay_steps=2), (1, 2): LegFault("never")})
    deployment = deploy(ComboOnce, end=FRIDAY, faults=faults)
    events = deployment.algorithm.events
    leg1 = [(e.status, e.fill_quantity) for e in events if e.order_id == 1]
    leg2 = [(e.status, e.fill_quantity) for e in events if e.order_id == 2]
    assert leg1 == [(OrderStatus.SUBMITTED, 0), (OrderStatus.PARTIALLY_FILLED, -1), (OrderStatus.FILLED, -1)]
    # the "never" leg stays open until its contract expires; LEAN cancels open orders on delisted contracts
    assert leg2 == [(OrderStatus.SUBMITTED, 0), (OrderStatus.CANCELED, 0)]
    assert deployment.algorithm.transactions.get_open_orders() == [] and deployment.open_orders() == []


def test_cancel_and_reject_faults_and_cancel_order() -> None:
    class Algo(ComboOnce):
        asynchronous = True

        def on_order_event(self, order_event: Any) -> None:
            super().on_order_event(order_event)
            if order_event.order_id == 3 and order_event.status == OrderStatus.SUBMITTED:
                self.transactions.cancel_order(3)

        def on_data(self, data: Any) -> None:
            super().on_data(data)
            if not hasattr(self, "single"):
                self.single = self.market_order(self.contract(OptionRight.CALL, 5), 1, asynchronous=True, tag="S")

    faults = FaultPlan({(1, 1): LegFault("cancel"), (1, 2): LegFault("reject"), (2, 1): LegFault("never")})
    events = deploy(Algo, end=FRIDAY, faults=faults).algorithm.events
    by_order = {oid: [e.status for e in events if e.order_id == oid] for oid in (1, 2, 3)}
    # a combo with a rejected leg is refused whole
    assert by_order[1] == [OrderStatus.SUBMITTED, OrderStatus.INVALID]
    assert by_order[2] == [OrderStatus.SUBMITTED, OrderStatus.INVALID]
    assert by_order[3] == [OrderStatus.SUBMITTED, OrderStatus.CANCELED]


def test_orders_from_initialize_are_invalid_and_never_reach_the_broker() -> None:
    class Algo(Recorder):
        def initialize(self) -> None:
            super().initialize()
            self.ticket = self.market_order(self.spy, 10)

    deployment = deploy(Algo, end=FRIDAY)
    assert deployment.algorithm.ticket.status == OrderStatus.INVALID
    assert deployment.brokerage.orders == {} and deployment.algorithm.events == []


def test_restart_holdings_empty_in_initialize_open_orders_get_new_ids_fills_while_down_have_no_events() -> None:
    class Algo(ComboOnce):
        asynchronous = True
        starts = 0

        def initialize(self) -> None:
            super().initialize()
            Algo.starts += 1
            self.placed = Algo.starts > 1  # algorithm_id is "" in initialize (Engine.cs sets it after set-up)
            self.store_seen = self.object_store.contains_key("flushed")
            self.object_store.save("flushed", "x")

        def on_warmup_finished(self) -> None:
            self.held_after_start = {h.symbol.value: h.quantity for h in self.portfolio.values() if h.invested}
            self.open_after_start = [(o.id, o.broker_id, o.tag) for o in self.transactions.get_open_orders()]

    faults = FaultPlan({(1, 1): LegFault("never")})
    plan = CrashPlan(crash_at=(2,), kinds=("order-submit",))  # just after the broker accepted the combo
    deployment = deploy(Algo, end=FRIDAY, faults=faults, crash_plan=plan)
    first, second = deployment.runs
    assert first.crash is not None and first.crash.detail == "after G-1"
    assert second.algorithm_id == "L-2" and second.holdings_during_initialize == {}
    algorithm = deployment.algorithm
    assert not algorithm.store_seen  # saved in the first initialize, never flushed: lost in the crash
    assert list(algorithm.held_after_start.values()) == [2]  # leg 2 filled while down, loaded after initialize
    assert algorithm.open_after_start == [(1, ["B-1"], "G-1")]  # new LEAN id 1, same broker id and tag
    assert algorithm.transactions.get_orders_by_brokerage_id("B-1")[0].id == 1
    assert algorithm.events == []


def test_simulated_crash_is_not_swallowed_by_except_exception_and_unflushed_saves_are_lost() -> None:
    class Algo(Recorder):
        starts = 0

        def initialize(self) -> None:
            super().initialize()
            Algo.starts += 1
            self.first_run = Algo.starts == 1  # algorithm_id is "" in initialize
            self.found = self.object_store.contains_key("a") or self.object_store.contains_key("b")
            if self.first_run:
                self.object_store.save("a", "1")
                try:
                    self.object_store.save("b", "2")  # crash point 2
                except Exception:  # algorithm code must not be able to swallow the crash
                    self.swallowed = True

    plan = CrashPlan(crash_at=(2,))
    deployment = deploy(Algo, end=FRIDAY, crash_plan=plan)
    assert issubclass(SimulatedCrash, BaseException) and not issubclass(SimulatedCrash, Exception)
    assert [run.crash.number if run.crash else None for run in deployment.runs] == [2, None]
    assert not hasattr(deployment.algorithm, "swallowed") and deployment.algorithm.found is False
    assert [point.kind for point in plan.points[:2]] == ["store-save", "store-save"]


def test_option_chain_is_built_lazily_once_per_step() -> None:
    class Quiet(Recorder):
        pass

    class Reader(Recorder):
        def on_data(self, data: Any) -> None:
            if self.time.minute == 0 and self.time.hour == 10:
                first = data.option_chains.get(self.canonical)
                second = data.option_chains.get(self.canonical)
                self.trace.append(("chain", (first is second, len(list(first)), {c.expiry for c in first})))

    market = SyntheticMarket(1, FRIDAY, FRIDAY)
    Deployment(start=FRIDAY, end=FRIDAY, algorithm_class=Quiet, market=market).run()
    assert market.chain_builds == 0
    reader = Deployment(start=FRIDAY, end=FRIDAY, algorithm_class=Reader, market=market).run().algorithm
    assert market.chain_builds == 1
    same, count, expiries = reader.trace[0][1]
    # OptionFilterUniverse.Strikes: the price falls between two listed strikes, so -10..+10 keeps 20 of them
    assert same and count == 20 * 2 * len(expiries)
    assert datetime(2024, 1, 5) in expiries  # Friday 0DTE exists


def test_expiry_closes_the_contracts_and_the_portfolio_agrees_with_the_broker() -> None:
    deployment = deploy(ComboOnce, end=FRIDAY)
    expiries = [e for e in deployment.algorithm.events if e.utc_time == datetime(2024, 1, 5, 21, 0)]
    assert expiries and all(e.status == OrderStatus.FILLED for e in expiries)
    held = {h.symbol.value: h.quantity for h in deployment.algorithm.portfolio.values() if h.invested}
    assert held == {k: v for k, v in deployment.broker_holdings().items()}
    assert not any("P00" in key for key in held)  # every contract expiring today is gone
    assert deployment.algorithm.portfolio.cash == pytest.approx(deployment.brokerage.cash)
