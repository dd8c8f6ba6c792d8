"""The simulated brokerage account: what survives a restart (holdings, cash, open orders with broker ids).

Follows LEAN/brokerages: orders get broker ids ("B-<n>") that stay the same across restarts (lean-facts §5:
correlate by broker id); fills while the algorithm is down change holdings only (the harness sends no events
for them). Market orders fill at the ask (buy) or bid (sell) of the current step; a market order placed while
the market is closed waits for the next session's first step (LEAN turns it into MarketOnOpen, §3.3).
Combos without faults fill all-or-nothing in one batch (LEAN's backtest ComboMarketFill, §3.3); with a
`FaultPlan` each leg follows its fault (live-like). Expiry: after the last step of an expiry day every held
contract expiring that day is cash-settled at intrinsic value against the close and removed, and open orders
on it are canceled (LEAN delists and cancels; §3.5).

Differs from LEAN: equity options are cash-settled too (LEAN delivers shares for ITM equity options), no fees,
no buying-power or margin checks, no early assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Set, Tuple

from persistence.records import Right
from tests.harness.black_scholes import years_to_expiry
from tests.harness.faults import FaultPlan, LegFault
from tests.harness.lean_stub.enums import OptionRight, SecurityType
from tests.harness.lean_stub.securities import multiplier_of
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket

OPEN, FILLED, CANCELED, REJECTED = "open", "filled", "canceled", "rejected"


@dataclass
class BrokerOrder:
    broker_id: str
    symbol: Symbol
    quantity: int
    tag: str
    combo_id: Optional[str]
    submitted_at: datetime
    ready_index: int  # first step index at which it may fill
    fault: Optional[LegFault] = None
    filled: int = 0
    status: str = OPEN
    fill_price: float = 0.0  # average

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled


@dataclass(frozen=True)
class BrokerUpdate:
    broker_id: str
    kind: str  # "fill", "cancel", "reject", "expire"
    quantity: int  # signed fill quantity (0 for cancel/reject)
    price: float
    time: datetime
    message: str = ""
    symbol: Optional[Symbol] = None  # set on "expire" updates (no order behind them)
    complete: bool = False  # a fill that leaves nothing open (the broker's view, also after a restart)


@dataclass
class BrokerHolding:
    quantity: int
    average_price: float


def _option_terms(symbol: Symbol) -> Tuple[Right, float]:
    return (Right.PUT if symbol.id.option_right == OptionRight.PUT else Right.CALL), symbol.id.strike_price


class SimulatedBrokerage:
    def __init__(self, market: SyntheticMarket, cash: float, faults: Optional[FaultPlan] = None) -> None:
        self.market = market
        self.cash = float(cash)
        self.faults = faults or FaultPlan()
        self.holdings: Dict[Symbol, BrokerHolding] = {}
        self.orders: Dict[str, BrokerOrder] = {}
        self.submissions = 0
        self._next_broker_id = 0

    # -- queries --

    def open_orders(self) -> List[BrokerOrder]:
        return [order for order in self.orders.values() if order.status == OPEN]

    def holding_quantities(self) -> Dict[Symbol, int]:
        return {symbol: holding.quantity for symbol, holding in self.holdings.items() if holding.quantity}

    def quote(self, symbol: Symbol, index: int) -> Tuple[float, float, float]:
        """(mark, bid, ask) of `symbol` at step `index`."""
        step = self.market.steps[index]
        if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
            right, strike = _option_terms(symbol)
            quote = self.market.quote(index, symbol.id.date.date(), strike, right)
            return quote.price, quote.bid, quote.ask
        if symbol.security_type == SecurityType.INDEX:
            return step.vix, step.vix, step.vix
        return step.price, step.price, step.price

    def tradable(self, symbol: Symbol, index: int) -> bool:
        if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
            return years_to_expiry(self.market.steps[index].time, symbol.id.date.date()) > 0
        return symbol.security_type == SecurityType.EQUITY

    # -- orders --

    def place(
        self, legs: Sequence[Tuple[Symbol, int]], tag: str, now: datetime, ready_index: int, combo: bool
    ) -> Tuple[List[BrokerOrder], List[BrokerUpdate]]:
        """Accept a batch (one combo or one single order). Rejected legs come back with status `rejected` and a
        reject update; a combo with a rejected leg is rejected whole (the broker refuses the package)."""
        self.submissions += 1
        combo_id = f"C-{self.submissions}" if combo and len(legs) > 1 else None
        orders = []
        for leg_number, (symbol, quantity) in enumerate(legs, start=1):
            self._next_broker_id += 1
            fault = self.faults.fault_for(self.submissions, leg_number)
            order = BrokerOrder(
                f"B-{self._next_broker_id}", symbol, int(quantity), tag, combo_id, now, ready_index, fault
            )
            self.orders[order.broker_id] = order
            orders.append(order)
        updates = []
        if any(order.fault is not None and order.fault.kind == "reject" for order in orders):
            reject_all = combo_id is not None
            for order in orders:
                if reject_all or (order.fault is not None and order.fault.kind == "reject"):
                    order.status = REJECTED
                    updates.append(BrokerUpdate(order.broker_id, "reject", 0, 0.0, now, "rejected by the broker"))
        return orders, updates

    def cancel(self, broker_id: str, now: datetime) -> Optional[BrokerUpdate]:
        order = self.orders.get(broker_id)
        if order is None or order.status != OPEN:
            return None
        order.status = CANCELED
        return BrokerUpdate(broker_id, "cancel", 0, 0.0, now, "canceled on request")

    def _fill(self, order: BrokerOrder, quantity: int, index: int) -> BrokerUpdate:
        _, bid, ask = self.quote(order.symbol, index)
        price = ask if quantity > 0 else bid
        order.fill_price = (order.fill_price * order.filled + price * quantity) / (order.filled + quantity)
        order.filled += quantity
        if order.filled == order.quantity:
            order.status = FILLED
        holding = self.holdings.setdefault(order.symbol, BrokerHolding(0, 0.0))
        new_quantity = holding.quantity + quantity
        if new_quantity == 0:
            del self.holdings[order.symbol]
        else:
            if holding.quantity == 0 or (holding.quantity > 0) != (new_quantity > 0):
                holding.average_price = price
            elif (holding.quantity > 0) == (quantity > 0):
                holding.average_price = (holding.average_price * holding.quantity + price * quantity) / new_quantity
            holding.quantity = new_quantity
        self.cash -= quantity * price * multiplier_of(order.symbol)
        step_time = self.market.steps[index].time
        return BrokerUpdate(order.broker_id, "fill", quantity, price, step_time, complete=order.status == FILLED)

    def _leg_due(self, order: BrokerOrder, index: int) -> Optional[int]:
        """How much of an open leg fills at this step (0 = nothing); None = the broker cancels it."""
        if index < order.ready_index or not self.tradable(order.symbol, index):
            return 0
        fault = order.fault
        if fault is None:
            return order.remaining
        if fault.kind == "never":
            return 0
        if fault.kind == "cancel":
            return None
        if fault.kind == "late":
            return order.remaining if index >= order.ready_index + fault.delay_steps else 0
        # partial
        if order.filled == 0:
            part = int(abs(order.quantity) * fault.fraction)
            part = max(1, min(part, abs(order.quantity) - 1)) if abs(order.quantity) > 1 else abs(order.quantity)
            return part if order.quantity > 0 else -part
        return order.remaining if index >= order.ready_index + fault.delay_steps else 0

    def match(self, index: int, only: Optional[Set[str]] = None) -> List[BrokerUpdate]:
        """Fill what is due at step `index` (all open orders, or just `only`). One batch, in placement order."""
        updates: List[BrokerUpdate] = []
        now = self.market.steps[index].time
        combos: Dict[str, List[BrokerOrder]] = {}
        for order in list(self.orders.values()):
            if order.status != OPEN or (only is not None and order.broker_id not in only):
                continue
            if order.combo_id is not None and all(
                leg.fault is None for leg in self.orders.values() if leg.combo_id == order.combo_id
            ):
                combos.setdefault(order.combo_id, []).append(order)
                continue
            due = self._leg_due(order, index)
            if due is None:
                order.status = CANCELED
                updates.append(BrokerUpdate(order.broker_id, "cancel", 0, 0.0, now, "canceled by the broker"))
            elif due:
                updates.append(self._fill(order, due, index))
        for legs in combos.values():
            # all-or-nothing: every leg must be fillable now
            if all(self._leg_due(leg, index) == leg.remaining for leg in legs):
                updates.extend(self._fill(leg, leg.remaining, index) for leg in legs)
        order_of = {broker_id: position for position, broker_id in enumerate(self.orders)}
        updates.sort(key=lambda update: order_of[update.broker_id])
        return updates

    def settle_expiries(self, index: int) -> List[BrokerUpdate]:
        """At the last step of a day: cash-settle contracts expiring today, cancel open orders on them."""
        step = self.market.steps[index]
        if index + 1 < len(self.market.steps) and self.market.steps[index + 1].time.date() == step.time.date():
            return []
        today = step.time.date()
        updates: List[BrokerUpdate] = []
        for order in self.open_orders():
            if order.symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
                if order.symbol.id.date.date() <= today:
                    order.status = CANCELED
                    updates.append(BrokerUpdate(order.broker_id, "cancel", 0, 0.0, step.time, "contract expired"))
        for symbol, holding in list(self.holdings.items()):
            if symbol.security_type not in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
                continue
            if symbol.id.date.date() > today:
                continue
            right, strike = _option_terms(symbol)
            intrinsic = max(0.0, step.price - strike) if right == Right.CALL else max(0.0, strike - step.price)
            self.cash += holding.quantity * intrinsic * multiplier_of(symbol)
            del self.holdings[symbol]
            updates.append(
                BrokerUpdate("", "expire", -holding.quantity, round(intrinsic, 4), step.time, "expired", symbol)
            )
        return updates
