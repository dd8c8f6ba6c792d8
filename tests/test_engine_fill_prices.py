"""Fills learned from holdings get prices: opening fills from the broker's average price, closing fills from the
quote mid. A crash during a losing exit books the loss the broker's fills imply, and the risk limits follow."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Dict, Optional

import pytest

from core.contracts import OPTION_MULTIPLIER
from core.params import Params
from core.ports import ListLog, OptionQuote
from core.records import PositionRecord, PositionStatus, Right, RiskRecord, StrategyState
from engine.engine import TradingEngine
from recovery.reconcile import FILL_PRICE_UNKNOWN, MissedFill, apply_report, reconcile
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRules, FakeStore, FakeView

ENTRY_PRICES = {STRUCTURE[0].symbol: 5.00, STRUCTURE[1].symbol: 4.00, STRUCTURE[2].symbol: 1.00}  # 1.00 credit
# the stop: the naked puts went from 1.00 to 5.60; market orders fill at the ask (buys) and the bid (sells)
EXIT_BID_ASK = {STRUCTURE[0].symbol: (5.20, 5.30), STRUCTURE[1].symbol: (4.40, 4.50), STRUCTURE[2].symbol: (5.50, 5.60)}


def quotes() -> Dict[str, OptionQuote]:
    return {
        leg.symbol: OptionQuote(leg.symbol, "SPY", Right.PUT, leg.strike, leg.expiry, *EXIT_BID_ASK[leg.symbol], None)
        for leg in STRUCTURE
    }


def view(minutes: int, with_quotes: bool = True, market_open: bool = True) -> FakeView:
    now = T0 + timedelta(minutes=minutes)
    return FakeView(now=now, quotes=quotes() if with_quotes else {}, market_open=market_open)


def start(store: FakeStore, broker: FakeBroker, rules: FakeRules, first: FakeView) -> TradingEngine:
    engine = TradingEngine(store, broker, Params(), ListLog(), [rules])  # the real RiskManager
    broker.engine = engine
    engine.start(first.now)
    engine.on_warmup_finished(first)
    return engine


def risk_of(engine: TradingEngine) -> RiskRecord:
    risk = engine.snapshot().risk
    assert risk is not None
    return risk


class Scenario:
    """Entry fills with events at ENTRY_PRICES; the exit is submitted, the process dies, the exit fills while
    down at the bid/ask of EXIT_BID_ASK (cash flows recorded as the broker saw them), then a restart."""

    def __init__(self) -> None:
        self.store, self.broker, self.rules = FakeStore(), FakeBroker(), FakeRules()
        self.cash_flow = 0.0  # what the broker's fills imply, + received
        engine = start(self.store, self.broker, self.rules, view(0))
        engine.on_market(view(0))
        for order in list(self.broker.orders.values()):
            self.fill(order.order_id, ENTRY_PRICES[order.symbol])
        (self.position,) = engine.snapshot().open_positions()
        self.rules.want_entry, self.rules.want_exit = False, True
        engine.on_market(view(1))
        assert engine.snapshot().positions[self.position.position_id].status is PositionStatus.CLOSING
        self.broker.engine = None  # crash: the exit fills while nobody listens
        for order in [o for o in self.broker.orders.values() if o.open]:
            bid, ask = EXIT_BID_ASK[order.symbol]
            self.fill(order.order_id, ask if order.quantity > 0 else bid)
        assert self.broker.held == {}
        self.broker.restart("run2")
        self.rules.want_exit = False

    def fill(self, order_id: int, price: float) -> None:
        order = self.broker.orders[order_id]
        quantity = order.quantity - order.filled
        self.broker.fill(order_id, quantity, price)
        self.cash_flow -= quantity * price * OPTION_MULTIPLIER

    def restart(self, first: FakeView) -> TradingEngine:
        self.store = self.store.crash()  # what a new process finds
        return start(self.store, self.broker, self.rules, first)

    def closed(self, engine: TradingEngine) -> PositionRecord:
        closed = engine.snapshot().positions[self.position.position_id]
        assert closed.status is PositionStatus.CLOSED and closed.realized_pnl is not None
        return closed


def spread_allowance() -> float:
    """Half the spread of every exit contract: a mid is at most that far from a fill at the bid or ask."""
    return sum(abs(leg.quantity) * (ask - bid) / 2 for leg in STRUCTURE for bid, ask in [EXIT_BID_ASK[leg.symbol]])


def test_exit_filled_while_down_books_the_loss_the_broker_fills_imply_and_risk_follows() -> None:
    scenario = Scenario()
    assert scenario.cash_flow == pytest.approx(-950.0)  # a stop-loss exit
    engine = scenario.restart(view(30))  # the warm-up view has quotes: reconcile prices the fills at the mid
    closed = scenario.closed(engine)
    assert closed.realized_pnl == pytest.approx(scenario.cash_flow, abs=spread_allowance() * OPTION_MULTIPLIER)
    assert closed.realized_pnl < 0 and FILL_PRICE_UNKNOWN not in closed.note
    risk = risk_of(engine)
    assert risk.daily_loss == pytest.approx(-closed.realized_pnl) and risk.consecutive_losses == 1
    assert scenario.store.memory["risk"] == risk  # saved, not just in memory
    assert engine.snapshot().strategies["s1"].state is StrategyState.WAITING


def test_without_a_quote_at_warm_up_the_close_waits_for_the_first_market_quote_and_entries_wait_too() -> None:
    scenario = Scenario()
    engine = scenario.restart(view(30, with_quotes=False))  # LEAN: a contract no longer held has no quote yet
    waiting = engine.snapshot().positions[scenario.position.position_id]
    assert waiting.status is PositionStatus.CLOSING
    assert engine.snapshot().strategies["s1"].state is StrategyState.EXITING
    scenario.rules.want_entry = True
    engine.on_market(view(31, with_quotes=False))
    assert not [tag for tag, _ in scenario.broker.submitted if tag.endswith("-entry")][1:]  # no second entry
    engine.on_market(view(32))  # the chain arrives
    closed = scenario.closed(engine)
    assert closed.realized_pnl == pytest.approx(scenario.cash_flow, abs=spread_allowance() * OPTION_MULTIPLIER)
    assert risk_of(engine).consecutive_losses == 1
    assert any(kind == "fill-priced" for kind, _, _ in scenario.store.audits)


def test_no_quote_at_all_books_the_close_after_the_timeout_with_the_price_unknown() -> None:
    scenario = Scenario()
    engine = scenario.restart(view(30, with_quotes=False))
    engine.on_market(view(33, with_quotes=False))
    assert engine.snapshot().positions[scenario.position.position_id].status is PositionStatus.CLOSING
    engine.on_market(view(36, with_quotes=False))  # 6 minutes of open market without a quote
    closed = scenario.closed(engine)
    assert FILL_PRICE_UNKNOWN in closed.note
    assert any(kind == "fill-price-unknown" for kind, _, _ in scenario.store.audits)


def test_a_closed_market_at_restart_does_not_start_the_timeout() -> None:
    scenario = Scenario()
    engine = scenario.restart(view(30, with_quotes=False, market_open=False))
    engine.on_market(view(600, with_quotes=False, market_open=False))
    assert engine.snapshot().positions[scenario.position.position_id].status is PositionStatus.CLOSING
    engine.on_market(view(601))
    assert FILL_PRICE_UNKNOWN not in scenario.closed(engine).note


def test_entry_filled_while_down_is_priced_from_the_broker_average() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    engine = start(store, broker, rules, view(0))
    engine.on_market(view(0))
    broker.engine = None
    for order in list(broker.orders.values()):
        broker.fill(order.order_id, order.quantity, ENTRY_PRICES[order.symbol])
    broker.restart("run2")
    rules.want_entry = False
    again = start(store.crash(), broker, rules, view(30))
    (position,) = again.snapshot().open_positions()
    assert position.entry_price == pytest.approx(5.00 - 4.00 - 2 * 1.00)  # per unit, negative = credit
    assert FILL_PRICE_UNKNOWN not in position.note


def test_a_leg_filled_partly_before_and_partly_while_down_gets_the_broker_average() -> None:
    store, broker, rules = FakeStore(), FakeBroker(), FakeRules()
    engine = start(store, broker, rules, view(0))
    engine.on_market(view(0))
    naked = next(o for o in broker.orders.values() if o.quantity == -2)
    broker.fill(naked.order_id, -1, 1.00)  # booked through its event
    broker.engine = None
    broker.fill(naked.order_id, -1, 1.40)  # while down
    for order in [o for o in broker.orders.values() if o.open]:
        broker.fill(order.order_id, order.quantity, ENTRY_PRICES[order.symbol])
    broker.restart("run2")
    rules.want_entry = False
    again = start(store.crash(), broker, rules, view(30))
    (entry,) = [g for g in again.snapshot().groups.values() if g.group_id.endswith("-entry")]
    naked_leg = next(leg for leg in entry.legs if leg.symbol == naked.symbol)
    assert naked_leg.filled_quantity == -2 and naked_leg.avg_fill_price == pytest.approx(1.20)
    assert naked_leg.avg_fill_price == pytest.approx(broker.average[naked.symbol])


def test_entry_without_a_broker_average_is_noted_and_audited() -> None:
    class NoAverages(FakeBroker):
        def average_prices(self) -> Dict[str, float]:
            return {}

    store, broker, rules = FakeStore(), NoAverages(), FakeRules()
    engine = start(store, broker, rules, view(0))
    engine.on_market(view(0))
    broker.engine = None
    for order in list(broker.orders.values()):
        broker.fill(order.order_id, order.quantity, ENTRY_PRICES[order.symbol])
    broker.restart("run2")
    rules.want_entry = False
    restarted = store.crash()
    again = start(restarted, broker, rules, view(30))
    (position,) = again.snapshot().open_positions()
    assert FILL_PRICE_UNKNOWN in position.note
    assert any(kind == "fill-price-unknown" for kind, _, _ in restarted.audits)


# ----------------------------------------------------------------------------------------------- reconcile, pure


def fills_of(report_actions: tuple[object, ...]) -> Dict[str, Optional[float]]:
    return {a.symbol: a.price for a in report_actions if isinstance(a, MissedFill)}


def test_reconcile_prices_opening_fills_from_averages_and_closing_fills_from_mids() -> None:
    scenario = Scenario()
    store = scenario.store.crash()
    groups = {g.group_id: g for g in store.load_all().groups.values()}
    positions = dict(store.load_all().positions)
    mids = {symbol: (bid + ask) / 2 for symbol, (bid, ask) in EXIT_BID_ASK.items()}
    report = reconcile(positions, groups, {}, {}, mids)
    assert fills_of(report.actions) == pytest.approx(mids)
    unpriced = reconcile(positions, groups, {})
    assert set(fills_of(unpriced.actions).values()) == {None}
    applied = apply_report(positions, groups, unpriced, datetime(2024, 1, 3, 11, 0))
    assert all(FILL_PRICE_UNKNOWN in note.message for note in applied.audit if note.kind == "missed-fill")
