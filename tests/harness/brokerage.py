"""The simulated brokerage account: what survives a restart (holdings, cash, open orders with broker ids).

Follows LEAN/brokerages (LEAN 24863901): nothing fills while the exchange is closed (the fill models'
`IsExchangeOpen`, Common/Orders/Fills/EquityFillModel.cs; closed AT 16:00, market_calendar.py); an index (SPX)
is priced at its own level (market.py), VIX at the VIX level. Orders get broker ids ("B-<n>") that stay the same
across restarts (LEAN gives reloaded orders new ids, BrokerageTransactionHandler.AddOpenOrder: correlate by broker
id); fills while the algorithm is down change holdings only (the harness sends no events for them). Market orders
fill at the ask (buy) or bid (sell) of the current step; a market order placed while the market is closed waits
for the next session's first step.
Combos without faults fill all-or-nothing in one batch (LEAN's backtest FillModel.ComboMarketFill); with a
`FaultPlan` each leg follows its fault (live-like). Expiry: after the last step of an expiry day every held
contract expiring that day is cash-settled at intrinsic value against the close and removed, and open orders
on it are canceled (BacktestingBrokerage.ProcessDelistings).

Exercise, assignment and expiry follow LEAN 24863901 (each with a test in tests/test_lean_conformance.py):
- an expiring contract still held is closed by an OptionExerciseOrder for -holding
  (Engine/TransactionHandlers/BrokerageTransactionHandler.cs `HandleOptionNotification`, expired branch);
  Common/Orders/OptionExercise/DefaultExerciseModel.cs `OptionExercise` fills the option at 0; it is in the
  money when the intrinsic value at the underlying's close is at least 0.01 (Common/Securities/Option/Option.cs
  `IsAutoExercised`), an assignment when that holding was short;
- physical delivery (equity options, Option.cs constructor `ExerciseSettlement = PhysicalDelivery`): in the
  money, a second fill of the underlying at the strike for `GetExerciseQuantity` shares (put: +quantity x 100,
  call: -quantity x 100 for the order quantity); cash settlement (index options, Common/Securities/IndexOption/
  IndexOption.cs `SettlementType.Cash`): no shares, the intrinsic value x 100 x -quantity is credited
  (Common/Securities/Option/OptionPortfolioModel.cs `ProcessCloseTradeProfit`);
- early assignment (Brokerages/Backtesting/BacktestingBrokerage.cs `ProcessAssignmentOrders`, at most once an
  hour, with Common/Securities/Option/DefaultOptionAssignmentModel.cs `GetAssignment`): a short contract is
  assigned in full when it is American and within 4 days of expiry (European: on its expiry date), more than
  5 % in the money against the underlying's close and `EstimateArbitragePnL` is positive; the exercise order
  carries the tag "Simulated option assignment before expiration".
Combo limit orders follow Common/Orders/Fills/FillModel.cs `ComboLimitFill` (via `Fill`, case ComboLimit) and
Brokerages/Backtesting/BacktestingBrokerage.cs `Scan` (LEAN 24863901; tests in tests/test_lean_conformance.py):
- not on the bar they were placed (Scan skips a non-market order whose Time is the current UtcTime): from the
  next step on; ComboLimitFill itself has no exchange-open check (unlike the market fills), so a combo limit can
  fill on the 16:00 slice;
- each leg is priced from the quote side of its own order's direction (`GetPrices`: the ask bar for a buying
  leg, the bid bar for a selling one), taking that bar's Low when the group buys (combo quantity > 0) and its
  High when it sells; the combo's price is the sum of leg price x leg ratio (leg quantity / combo quantity,
  `ComboLimitOrderLegParameters.Price`, equity legs / 100);
- a buying group fills when that sum is strictly below the limit, a selling group when strictly above; then
  every leg fills completely at once, each at the leg price used above (not at the limit);
- the limit is signed: with our positive combo quantity a credit structure has a negative sum, so limit -1.00
  means "receive at least a little more than 1.00 per unit".
Differs from LEAN for combo limits: the harness's quote bars are one price per step, so Low and High are the
step's bid or ask; every contract has a quote at every step, so LEAN's stale-data refusal (a leg's last bar
ending before the order time) never applies; leg faults other than `reject` are not applied to them.
Differs from LEAN: no fees, no buying-power or margin checks; expiries are settled right after the expiry
day's last bar (LEAN processes the delisting on the next tradable date, Engine/DataFeeds/Enumerators/
DelistingEventProvider.cs `GetEvents`, so the last day of a backtest is never settled inside it); the
assignment model runs in live mode too (a live broker assigns at its own discretion); the exercise fill
message does not carry OptionPortfolioModel's ". Profit: ..." suffix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Dict, List, Optional, Sequence, Set, Tuple

from core.records import Right
from tests.harness.black_scholes import years_to_expiry
from tests.harness.faults import FaultPlan, LegFault
from tests.harness.lean_stub.enums import OptionRight, OptionStyle, SecurityType
from tests.harness.lean_stub.securities import multiplier_of
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.market_calendar import is_market_open

OPEN, FILLED, CANCELED, REJECTED = "open", "filled", "canceled", "rejected"


@dataclass
class ComboLimit:
    """A combo limit at the broker: the group's limit price and its combo quantity (for the leg ratios)."""

    limit_price: float
    quantity: int


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


ASSIGNMENT_TAG = "Simulated option assignment before expiration"  # DefaultOptionAssignmentModel.GetAssignment


@dataclass(frozen=True)
class Exercise:
    """What one OptionExerciseOrder did (DefaultExerciseModel.OptionExercise)."""

    symbol: Symbol  # the option contract
    quantity: int  # the exercise order's quantity: -holding, it closes the contract
    in_the_money: bool
    is_assignment: bool
    underlying_price: float  # the underlying's close it was judged on
    strike: float
    tag: str
    underlying: Optional[Symbol] = None  # physical delivery in the money: the shares that changed hands
    underlying_quantity: int = 0
    cash: float = 0.0  # cash settlement credited to the account (negative: paid)


@dataclass(frozen=True)
class BrokerUpdate:
    broker_id: str
    kind: str  # "fill", "cancel", "reject", "expire"
    quantity: int  # signed fill quantity (0 for cancel/reject)
    price: float
    time: datetime
    message: str = ""
    symbol: Optional[Symbol] = None
    complete: bool = False  # a fill that leaves nothing open (the broker's view, also after a restart)
    exercise: Optional[Exercise] = None  # kind "exercise": no order of ours behind it


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
        self.combo_limits: Dict[str, ComboLimit] = {}  # combo id -> its limit (combo limit orders only)
        self.submissions = 0
        self._next_broker_id = 0
        self._next_assignment_scan: Optional[datetime] = None

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
            underlying = symbol.underlying.value if symbol.underlying is not None else symbol.id.symbol
            quote = self.market.quote(index, symbol.id.date.date(), strike, right, underlying)
            return quote.price, quote.bid, quote.ask
        if symbol.security_type == SecurityType.INDEX and symbol.value == "VIX":
            return step.vix, step.vix, step.vix
        level = self.market.level(index, symbol.value)  # SPY, or SPX at its own level
        return level, level, level

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

    def make_combo_limit(self, orders: Sequence[BrokerOrder], limit_price: float, quantity: int) -> None:
        """The batch just placed is one combo limit order: its limit and combo quantity (for the leg ratios)."""
        combo_id = orders[0].combo_id or f"C-{self.submissions}"
        for order in orders:
            order.combo_id = combo_id
        self.combo_limits[combo_id] = ComboLimit(limit_price, quantity)

    def update_limit(self, broker_id: str, limit_price: float) -> None:
        """A new limit for the combo limit order `broker_id` belongs to (BacktestingBrokerage.UpdateOrder)."""
        order = self.orders.get(broker_id)
        if order is not None and order.combo_id in self.combo_limits:
            self.combo_limits[order.combo_id].limit_price = limit_price

    def _combo_limit_fills(self, legs: Sequence[BrokerOrder], index: int) -> List[BrokerUpdate]:
        """FillModel.ComboLimitFill for one combo at step `index`: all legs at once, or nothing."""
        combo = self.combo_limits[str(legs[0].combo_id)]
        if any(index < leg.ready_index or not self.tradable(leg.symbol, index) for leg in legs):
            return []
        total = 0.0
        for leg in legs:
            _, bid, ask = self.quote(leg.symbol, index)
            ratio = leg.quantity / combo.quantity
            if leg.symbol.security_type == SecurityType.EQUITY:
                ratio /= 100
            total += (ask if leg.quantity > 0 else bid) * ratio
        crosses = total < combo.limit_price if combo.quantity > 0 else total > combo.limit_price
        if not crosses:
            return []
        return [self._fill(leg, leg.remaining, index) for leg in legs]

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
        self._book_holding(order.symbol, quantity, price)
        self.cash -= quantity * price * multiplier_of(order.symbol)
        step_time = self.market.steps[index].time
        return BrokerUpdate(order.broker_id, "fill", quantity, price, step_time, complete=order.status == FILLED)

    def _book_holding(self, symbol: Symbol, quantity: int, price: float) -> None:
        holding = self.holdings.setdefault(symbol, BrokerHolding(0, 0.0))
        new_quantity = holding.quantity + quantity
        if new_quantity == 0:
            del self.holdings[symbol]
            return
        if holding.quantity == 0 or (holding.quantity > 0) != (new_quantity > 0):
            holding.average_price = price
        elif (holding.quantity > 0) == (quantity > 0):
            holding.average_price = (holding.average_price * holding.quantity + price * quantity) / new_quantity
        holding.quantity = new_quantity

    def _leg_due(self, order: BrokerOrder, index: int) -> Optional[int]:
        """How much of an open leg fills at this step (0 = nothing); None = the broker cancels it."""
        if index < order.ready_index or not self.tradable(order.symbol, index):
            return 0
        if not is_market_open(self.market.steps[index].time):
            return 0  # the fill models fill nothing while the exchange is closed (FillModel.IsExchangeOpen)
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
        limit_combos: Dict[str, List[BrokerOrder]] = {}
        for order in list(self.orders.values()):
            if order.status != OPEN or (only is not None and order.broker_id not in only):
                continue
            if order.combo_id in self.combo_limits:
                limit_combos.setdefault(str(order.combo_id), []).append(order)
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
        for legs in limit_combos.values():
            updates.extend(self._combo_limit_fills(legs, index))
        order_of = {broker_id: position for position, broker_id in enumerate(self.orders)}
        updates.sort(key=lambda update: order_of[update.broker_id])
        return updates

    def settle_expiries(self, index: int) -> List[BrokerUpdate]:
        """At the last step of a day: cancel open orders on contracts expiring today, then close every such
        contract still held with an exercise (OTM at 0; in the money delivered or cash-settled)."""
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
        for symbol in list(self.holdings):
            if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
                if symbol.id.date.date() <= today:
                    updates.append(self._exercise(symbol, index, ""))
        return updates

    def simulate_assignments(self, index: int) -> List[BrokerUpdate]:
        """BacktestingBrokerage.ProcessAssignmentOrders: at most once an hour, every short option the
        DefaultOptionAssignmentModel picks is assigned in full (ordered by the underlying's ticker)."""
        now = self.market.steps[index].time
        if self._next_assignment_scan is not None and now < self._next_assignment_scan:
            return []
        self._next_assignment_scan = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        shorts = [
            symbol
            for symbol, holding in self.holdings.items()
            if holding.quantity < 0 and symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION)
        ]
        return [
            self._exercise(symbol, index, ASSIGNMENT_TAG)
            for symbol in sorted(shorts, key=lambda s: s.id.symbol)
            if self._assignment_due(symbol, index)
        ]

    def _assignment_due(self, symbol: Symbol, index: int) -> bool:
        """DefaultOptionAssignmentModel.GetAssignment (requiredInTheMoneyPercent 0.05, priorExpiration 4 days),
        with IsDeepInTheMoney and EstimateArbitragePnL (fees 0: the harness charges none)."""
        step = self.market.steps[index]
        expiry = datetime.combine(symbol.id.date.date(), datetime.min.time())
        if symbol.id.option_style == OptionStyle.AMERICAN:
            soon = expiry - step.time <= timedelta(days=4)
        else:
            soon = expiry.date() == step.time.date()
        right, strike = _option_terms(symbol)
        close = self._underlying_close(symbol, index)
        deep = (close - strike) / close > 0.05 if right == Right.CALL else (strike - close) / close > 0.05
        if not (soon and deep):
            return False
        holding = self.holdings[symbol]
        _, option_bid, _ = self.quote(symbol, index)
        underlying_price = close  # bid (calls) / ask (puts) of the underlying: one price in the harness
        unit = 100  # ContractUnitOfTrade = ContractMultiplier
        underlying_quantity = (-1 if right == Right.CALL else 1) * holding.quantity * unit
        base = (option_bid - holding.average_price) * -holding.quantity * unit
        alternative = (underlying_price - strike) * underlying_quantity * unit - (
            holding.average_price * abs(holding.quantity) * unit
        )
        return alternative - base > 0

    def _underlying_close(self, symbol: Symbol, index: int) -> float:
        """The option's underlying at the step, at its own level (SPX is not SPY)."""
        underlying = symbol.underlying.value if symbol.underlying is not None else symbol.id.symbol
        return self.market.level(index, underlying)

    def _exercise(self, symbol: Symbol, index: int, tag: str) -> BrokerUpdate:
        """Close `symbol` with an exercise order for -holding (DefaultExerciseModel.OptionExercise)."""
        step = self.market.steps[index]
        holding = self.holdings.pop(symbol)
        quantity = -holding.quantity
        right, strike = _option_terms(symbol)
        close = self._underlying_close(symbol, index)
        intrinsic = max(0.0, close - strike) if right == Right.CALL else max(0.0, strike - close)
        in_the_money = intrinsic >= 0.01
        exercise = Exercise(symbol, quantity, in_the_money, in_the_money and holding.quantity < 0, close, strike, tag)
        if in_the_money and symbol.security_type == SecurityType.INDEX_OPTION:
            cash = -intrinsic * multiplier_of(symbol) * quantity
            self.cash += cash
            exercise = replace(exercise, cash=cash)
        elif in_the_money and symbol.underlying is not None:
            shares = (-1 if right == Right.CALL else 1) * quantity * multiplier_of(symbol)
            self._book_holding(symbol.underlying, shares, strike)
            self.cash -= shares * strike
            exercise = replace(exercise, underlying=symbol.underlying, underlying_quantity=shares)
        return BrokerUpdate("", "exercise", quantity, 0.0, step.time, tag, symbol, exercise=exercise)
