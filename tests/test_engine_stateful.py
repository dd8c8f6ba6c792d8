"""Hypothesis state machine over the engine: random fills, partial fills, broker cancels, repeated events,
crashes (at a random store write, or at submit), fills while down, restarts with or without surviving orders.

Checked all the time:  never two entry cycles of one strategy at once (records), nothing held twice.
Checked once quiescent (the broker fills what is sent, time passes, the market is open):
  - no open order is left;
  - holdings == the contracts of the open positions, contract by contract (no orphan, no naked leg);
  - every open position is a whole multiple of the designed structure;
  - no group is INCOMPLETE or still moving, and every strategy state agrees with its records.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Dict, Optional

from hypothesis import HealthCheck, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from core.records import GroupStatus, PositionStatus, Record, StrategyState
from engine.facts import in_flight_groups_of, open_positions_of
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRules, FakeStore, FakeView, make_engine

UNITS = 2


class SimulatedCrash(BaseException):
    """Like the harness's crash: not an Exception, so the engine's guards let it through."""


class CrashingStore(FakeStore):
    """Crashes the process at the n-th immediate write from now (before the write lands)."""

    def __init__(self, disk: Optional[Dict[str, Record]] = None) -> None:
        super().__init__(disk)
        self.crash_in: Optional[int] = None

    def put(self, record: Record, immediate: bool = True) -> bool:
        if immediate and self.crash_in is not None:
            self.crash_in -= 1
            if self.crash_in <= 0:
                self.crash_in = None
                raise SimulatedCrash(f"crash before writing {record.record_name}")
        return super().put(record, immediate)

    def crash(self, keep_memory: bool = False) -> CrashingStore:
        return CrashingStore(self.memory if keep_memory else self.disk)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.runs = 1
        self.store = self.make_store()
        self.broker = FakeBroker("run1")
        self.rules = FakeRules(units=UNITS)
        self.rig = make_engine(self.store, self.broker, self.rules, self.now)
        self.up = True
        # every example starts with an entry in flight: that is where the interesting crashes are
        self.call("on_market", self.view(True))

    # ------------------------------------------------------------------------------------------- helpers

    def make_store(self) -> CrashingStore:
        return CrashingStore()

    def call(self, action: str, *args: object) -> None:
        """Call the engine; a SimulatedCrash takes it down like a killed process."""
        try:
            getattr(self.rig.engine, action)(*args)
        except SimulatedCrash:
            self.go_down()

    def go_down(self) -> None:
        self.up = False
        self.broker.engine = None
        self.broker.on_submit = None
        self.store.crash_in = None

    def view(self, market_open: bool = True) -> FakeView:
        return FakeView(now=self.now, market_open=market_open)

    # ------------------------------------------------------------------------------------------- rules

    @precondition(lambda self: self.up)
    @rule(minutes=st.integers(1, 7), market_open=st.booleans(), want_exit=st.booleans(), entries_allowed=st.booleans())
    def market(self, minutes: int, market_open: bool, want_exit: bool, entries_allowed: bool) -> None:
        self.now += timedelta(minutes=minutes)
        self.rules.want_exit = want_exit
        risk = self.rig.engine._risk
        assert risk is not None
        risk.allow = entries_allowed  # type: ignore[attr-defined]
        self.call("on_market", self.view(market_open))

    @rule(index=st.integers(0, 20), partial=st.booleans())
    def fill(self, index: int, partial: bool) -> None:
        """Fill an open order (with an event when the engine is up, silently when it is down)."""
        open_ids = self.broker.open_order_ids()
        if not open_ids:
            return
        order = self.broker.orders[open_ids[index % len(open_ids)]]
        left = order.quantity - order.filled
        quantity = (1 if left > 0 else -1) if partial else left
        try:
            self.broker.fill(order.order_id, quantity)
        except SimulatedCrash:
            self.go_down()

    @rule(index=st.integers(0, 20))
    def broker_cancels(self, index: int) -> None:
        open_ids = self.broker.open_order_ids()
        if open_ids:
            try:
                self.broker.cancel(open_ids[index % len(open_ids)])
            except SimulatedCrash:
                self.go_down()

    @precondition(lambda self: self.up and bool(self.broker.sent))
    @rule(index=st.integers(0, 50))
    def repeat_event(self, index: int) -> None:
        self.call("on_order_event", self.broker.sent[index % len(self.broker.sent)])

    @precondition(lambda self: self.up)
    @rule(how=st.sampled_from(["now", "at-a-later-write", "at-next-submit"]), writes=st.integers(1, 6))
    def crash(self, how: str, writes: int) -> None:
        if how == "now":
            self.go_down()
        elif how == "at-a-later-write":
            self.store.crash_in = writes
        else:

            def boom(tag: str) -> None:
                raise SimulatedCrash(f"crash while submitting {tag}")

            self.broker.on_submit = boom

    @precondition(lambda self: self.up)
    @rule()
    def end_of_day_save(self) -> None:
        self.call("final_save")

    @precondition(lambda self: not self.up)
    @rule(keep_memory=st.booleans(), orders_survive=st.booleans(), market_open=st.booleans())
    def restart(self, keep_memory: bool, orders_survive: bool, market_open: bool) -> None:
        self.runs += 1
        self.now += timedelta(minutes=3)
        self.broker.restart(f"run{self.runs}", keep_open_orders=orders_survive)
        self.broker.sent = []
        self.store = self.store.crash(keep_memory=keep_memory)
        self.rig = make_engine(self.store, self.broker, self.rules, self.now, warm=False)
        self.up = True
        self.call("on_warmup_finished", self.view(market_open))

    # ------------------------------------------------------------------------------------------- checks

    @invariant()
    def one_cycle_at_a_time(self) -> None:
        if not self.up:
            return
        snap = self.rig.engine.snapshot()
        cycles = {p.position_id for p in open_positions_of("s1", snap.positions)}
        cycles |= {g.position_id for g in in_flight_groups_of("s1", snap.groups)}
        assert len(cycles) <= 1, f"two entry cycles at once: {sorted(cycles)}"

    @rule(fill_open_orders=st.booleans())
    def quiesce_and_check(self, fill_open_orders: bool) -> None:
        self.store.crash_in = None
        self.broker.on_submit = None
        if not self.up:
            self.restart(keep_memory=False, orders_survive=True, market_open=True)
        if fill_open_orders:
            for order_id in self.broker.open_order_ids():
                order = self.broker.orders[order_id]
                self.broker.fill(order_id, order.quantity - order.filled)
        self.broker.auto_fill = True
        self.rules.want_entry = False
        self.rules.want_exit = False
        for _ in range(8):
            self.now += timedelta(minutes=6)
            self.rig.engine.on_market(self.view(True))
        snap = self.rig.engine.snapshot()
        assert self.broker.open_order_ids() == [], "orders left open"
        booked: Dict[str, int] = {}
        for position in snap.open_positions():
            assert position.status is PositionStatus.OPEN
            for contract in position.contracts:
                booked[contract.symbol] = booked.get(contract.symbol, 0) + contract.quantity
            quantities = {c.symbol: c.quantity for c in position.contracts}
            units = {quantities.get(leg.symbol, 0) / leg.quantity for leg in STRUCTURE}
            assert len(units) == 1 and (u := units.pop()) >= 1 and u == int(u), f"not whole: {quantities}"
        assert booked == self.broker.held, f"records {booked} != holdings {self.broker.held}"
        for group in snap.groups.values():
            assert group.status not in (GroupStatus.INCOMPLETE, GroupStatus.PENDING, GroupStatus.SUBMITTED), group
        record = snap.strategies["s1"]
        expected = StrategyState.ACTIVE if snap.open_positions("s1") else StrategyState.WAITING
        assert record.state is expected, (record.state, record.reason)
        recoveries = sum(1 for g in snap.groups.values() if g.parent_group_id)
        note(f"quiescent: {'holding' if self.broker.held else 'flat'}, runs={min(self.runs, 3)}")
        note(f"recovery groups so far: {min(recoveries, 3)}")
        note(f"positions so far: {min(len(snap.positions), 3)}")
        self.broker.auto_fill = False
        self.rules.want_entry = True

    def teardown(self) -> None:
        # every run ends quiescent and checked, whatever the last step was
        self.quiesce_and_check(fill_open_orders=len(self.broker.sent) % 2 == 0)


EngineMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineStateful = EngineMachine.TestCase
