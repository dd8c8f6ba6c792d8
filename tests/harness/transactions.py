"""`algorithm.transactions`: LEAN order ids, tickets, order events and their ordering
(Engine/TransactionHandlers/BrokerageTransactionHandler.cs).

Follows LEAN:
- pre-order checks run on every leg before anything is submitted; a failing check (warming up, unknown
  security, no price, zero quantity, expired contract) returns INVALID ticket(s) and sends nothing, with no
  order event (QCAlgorithm.Trading.cs PreOrderChecksImpl);
- order ids 1, 2, 3... per run; event ids 1, 2, 3... per order (Order.GetNewId); every leg of a combo shares the tag
and a
  GroupOrderManager;
- a batch of broker updates (e.g. every leg of a combo fill) is applied to the portfolio first, then
  `on_order_event` runs once per event in order (HandleOrderEvents); an exception there stops the algorithm;
- backtest: SUBMITTED reaches `on_order_event` re-entrantly inside the order call (sync or async), the fill at
  the end of the time step (`process_synchronous_events`, see `submit`); live: synchronous orders fill before
  the call returns (WaitForOrder waits up to 5 s), so `on_order_event` runs re-entrantly;
- after a restart the broker's open orders are loaded with NEW ids, status SUBMITTED, and no events (AddOpenOrder).
Event sequence of an order: SUBMITTED (id 1), then PARTIALLY_FILLED/FILLED/CANCELED; a broker reject gives
INVALID. LEAN may also emit a NEW event first; the harness does not (unverified either way).
Exercise, assignment and expiry (Engine/TransactionHandlers/BrokerageTransactionHandler.cs
`EmitOptionNotificationEvents`, LEAN 24863901): a new OPTION_EXERCISE order tagged like the notification; its
events come one at a time, each applied to the portfolio before the handler sees it: first the option, FILLED at
0 for the order quantity (`is_assignment`, `is_in_the_money`, message "Assigned|Automatic Exercise|OTM.
Underlying: <close>", an assignment's message followed by the order tag), then, for physical delivery in the
money, the underlying under the SAME order id at the strike (`is_assignment` False, message "Option Assignment"
or "Option Exercise"). Cash settlement credits the account with the option's event.
Combo limit orders (LEAN 24863901; fills: tests/harness/brokerage.py):
- `combo_limit_order` builds a ComboLimit order per leg sharing one GroupOrderManager that holds the limit price
  (Algorithm/QCAlgorithm.Trading.cs `ComboLimitOrder` -> `SubmitComboOrder`; Common/Orders/ComboLimitOrder.cs);
- the limit is rounded to the smallest minimum price variation of the legs, judged at the leg order's Price (0 at
  submission: 0.01 for equity options and equities, 0.05 for index options), half to even
  (Engine/TransactionHandlers/BrokerageTransactionHandler.cs `RoundOrderPrices`, case ComboLimit; C# Math.Round);
- `ticket.update_limit_price(p)` on any leg sets the group's limit (ComboLimitOrder `ApplyUpdateOrderRequest`),
  rounded again, and the backtesting brokerage answers with one UPDATE_SUBMITTED event for that leg
  (BrokerageTransactionHandler `UpdateOrder`/`HandleUpdateOrderRequest`, Brokerages/Backtesting/
  BacktestingBrokerage.cs `UpdateOrder`); in a backtest the request is handled at the time step's
  ProcessSynchronousEvents, before the fill scan (Engine/TransactionHandlers/BacktestingTransactionHandler.cs);
  an order that is closed is refused at once with "Unable to update order with id N because it already has
  <Status> status." (Messages.OrderResponse `InvalidStatus`), an unknown id with "Unable to locate order with
  id N.";
- canceling any leg of a combo cancels every open leg of its group, one CANCELED event each
  (BacktestingBrokerage.cs `CancelOrder` over `TryGetGroupOrders`).
Differs from LEAN: live asynchronous orders get their SUBMITTED event at the next step, together with the fill
batch (LEAN processes them on its transaction thread at once; the brokerage fills when it fills). Only
`update_limit_price` is modelled of the ticket's update methods (not `update(UpdateOrderFields)`); live, a
limit update is handled inside the call (LEAN's transaction thread handles it at once, its event may come
before or after the call returns). `cancel_order` is handled inside the call in backtests too: LEAN queues the
cancel request like an update and handles it at the step's ProcessSynchronousEvents (BrokerageTransactionHandler
`CancelOrder` -> `HandleCancelOrderRequest`), so LEAN's CANCELED events come after the handler returns. Open
orders reloaded at a restart come back as plain orders without their group (the broker keeps matching the combo
at its limit).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from tests.harness.brokerage import BrokerOrder, BrokerUpdate, SimulatedBrokerage
from tests.harness.faults import CrashPlan
from tests.harness.lean_stub.enums import OrderStatus, OrderType, SecurityType
from tests.harness.lean_stub.orders import GroupOrderManager, Leg, Order, OrderEvent, OrderTicket
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import minimum_tick

if TYPE_CHECKING:
    from tests.harness.lean_stub.algorithm import QCAlgorithm


NO_DATA_MESSAGE = (
    "There is no data for this symbol yet, please check the security.HasData flag to ensure there is at least "
    "one data point."
)


def zero_price_message(symbol: Symbol) -> str:
    """Messages.Extensions.ZeroPriceForSecurity (Common/Messages/Messages.QuantConnect.cs), Python spelling."""
    return (
        f"{symbol}: The security does not have an accurate price as it has not yet received a bar of data. "
        "Before placing a trade (or using set_holdings) warm up your algorithm with set_warmup, or use "
        "slice.contains(symbol) to confirm the Slice object has price before using the data. Data does not "
        "necessarily all arrive at the same time so your algorithm should confirm the data is ready before using "
        "it. In live trading this can mean you do not have an active subscription to the asset class you're "
        "trying to trade. If using custom data make sure you've set the 'Value' property."
    )


def combo_limit_increment(symbols: Sequence[Symbol]) -> float:
    """BrokerageTransactionHandler.RoundOrderPrices, case ComboLimit: the smallest minimum price variation among
    the legs, asked at the leg order's Price, which is 0 before any fill (so index options give 0.05,
    IndexOptionSymbolProperties `MinimumPriceVariationForPrice` below $3; equity options 0.01, symbol properties
    `usa,[*],option`; equities 0.01)."""
    increments = []
    for symbol in symbols:
        if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
            underlying = symbol.underlying.value if symbol.underlying is not None else symbol.id.symbol
            increments.append(minimum_tick(underlying, 0.0))
        else:
            increments.append(0.01)
    return min(increments)


def _invalid_status(order: Order) -> str:
    """Messages.OrderResponse.InvalidStatus, with the status as C# prints it (Filled, Canceled...)."""
    status = "".join(part.title() for part in order.status.name.split("_"))
    return f"Unable to update order with id {order.id} because it already has {status} status."


def round_limit_price(price: float, increment: float) -> float:
    """`Math.Round(price / increment) * increment` on decimals: C#'s default rounding is half to even."""
    steps = (Decimal(str(price)) / Decimal(str(increment))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return float(steps * Decimal(str(increment)))


class OrderResponse:
    def __init__(self, is_success: bool, message: str = "") -> None:
        self.is_success = is_success
        self.is_error = not is_success
        self.error_message = message


class Transactions:
    def __init__(self, algorithm: QCAlgorithm, brokerage: SimulatedBrokerage, crash_plan: CrashPlan) -> None:
        self._algorithm = algorithm
        self._brokerage = brokerage
        self._crash_plan = crash_plan
        self._orders: Dict[int, Order] = {}
        self._tickets: Dict[int, OrderTicket] = {}
        self._by_broker_id: Dict[str, int] = {}
        self._event_ids: Dict[int, int] = {}
        self._next_order_id = 0
        self._next_group_id = 0
        self._pending_events: List[OrderEvent] = []  # async SUBMITTED events, delivered at the next step
        self._pending_updates: List[Tuple[int, float, Optional[str]]] = []  # limit updates not yet handled
        self.events: List[OrderEvent] = []  # every event delivered to the algorithm (for tests)

    # -- LEAN API --

    def get_order_by_id(self, order_id: int) -> Optional[Order]:
        return self._orders.get(order_id)

    def get_order_ticket(self, order_id: int) -> Optional[OrderTicket]:
        return self._tickets.get(order_id)

    def get_open_orders(self, symbol: Optional[Symbol] = None) -> List[Order]:
        return [
            order
            for order in self._orders.values()
            if not order.status.is_closed and (symbol is None or order.symbol == symbol)
        ]

    def get_open_order_tickets(self) -> List[OrderTicket]:
        return [self._tickets[order.id] for order in self.get_open_orders()]

    def get_orders(self) -> List[Order]:
        return list(self._orders.values())

    def get_orders_by_brokerage_id(self, broker_id: str) -> List[Order]:
        order_id = self._by_broker_id.get(broker_id)
        return [self._orders[order_id]] if order_id is not None else []

    def cancel_order(self, order_id: int, tag: str = "") -> OrderResponse:
        order = self._orders.get(order_id)
        if order is None:
            return OrderResponse(False, f"Unable to locate order with id {order_id}")
        if order.status.is_closed:
            return OrderResponse(False, f"Order {order_id} is already {order.status.name}")
        group = order.group_order_manager
        legs = [self._orders[i] for i in group.order_ids] if group is not None else [order]
        now = self._algorithm.utc_time
        broker_ids = [b for leg in legs if not leg.status.is_closed for b in leg.broker_id]
        updates = [u for u in (self._brokerage.cancel(b, now) for b in broker_ids) if u]
        self.apply_updates(updates)
        return OrderResponse(bool(updates))

    def update_limit_price(self, order_id: int, limit_price: float, tag: Optional[str] = None) -> OrderResponse:
        """BrokerageTransactionHandler.UpdateOrder for a limit price: refused at once for an unknown, not yet
        submitted or closed order; otherwise queued (success) and, in a backtest, handled with the time step's
        ProcessSynchronousEvents (BacktestingTransactionHandler: ProcessPendingRequests, then the brokerage's
        Scan), so the new limit is in force for that step's fill scan and its UPDATE_SUBMITTED event arrives
        after the handler that asked returns. Live: handled at once (see the module docstring)."""
        order = self._orders.get(order_id)
        if order is None:
            return OrderResponse(False, f"Unable to locate order with id {order_id}.")
        if order.status == OrderStatus.NEW:
            return OrderResponse(
                False,
                f"Unable to update or cancel order with id {order_id} and status {order.status.name.title()} "
                "because the submit confirmation has not been received yet.",
            )
        if order.status.is_closed:
            return OrderResponse(False, _invalid_status(order))
        if order.type != OrderType.COMBO_LIMIT or order.group_order_manager is None:
            raise NotImplementedError("the harness models limit updates of combo limit orders only")
        self._pending_updates.append((order_id, limit_price, tag))
        if self._algorithm.live_mode:
            self._process_pending_updates()
        return OrderResponse(True)

    def _process_pending_updates(self) -> None:
        """HandleUpdateOrderRequest for each queued limit update, in order: a closed order is skipped (its
        request gets InvalidStatus, no event); else the group takes the limit (ComboLimitOrder
        .ApplyUpdateOrderRequest), rounded (RoundOrderPrices), and BacktestingBrokerage.UpdateOrder sends
        UPDATE_SUBMITTED for the updated order."""
        updates, self._pending_updates = self._pending_updates, []
        for order_id, limit_price, tag in updates:
            order = self._orders[order_id]
            group = order.group_order_manager
            if order.status.is_closed or group is None:
                continue
            symbols = [self._orders[i].symbol for i in group.order_ids]
            group.limit_price = round_limit_price(limit_price, combo_limit_increment(symbols))
            if tag is not None:
                order.tag = tag
            for leg_id in group.order_ids:
                for broker_id in self._orders[leg_id].broker_id:
                    self._brokerage.update_limit(broker_id, group.limit_price)
            self._dispatch([self._event(order, OrderStatus.UPDATE_SUBMITTED, self._algorithm.utc_time)])

    def cancel_open_orders(self) -> List[OrderResponse]:
        return [self.cancel_order(order.id) for order in self.get_open_orders()]

    # -- order placement (QCAlgorithm.market_order / combo_market_order call this) --

    def _check(self, symbol: Symbol, quantity: int) -> str:
        """QCAlgorithm.PreOrderChecksImpl (Algorithm/QCAlgorithm.Trading.cs, LEAN 24863901), in its order, with
        LEAN's messages (Common/Messages/Messages.Orders.cs, Messages.QuantConnect.cs `ZeroPriceForSecurity`)."""
        algorithm = self._algorithm
        if algorithm.is_warming_up:
            return (
                "This operation is not allowed in initialize or during warm up: OrderRequest.submit. "
                "Please move this code to the on_warmup_finished() method."
            )
        if not algorithm.securities.contains_key(symbol):
            return f"You haven't requested {symbol} data. Add this with add_security() in the initialize() method."
        if quantity == 0:
            return "Unable to submit order with id 0 that has zero quantity."
        security = algorithm.securities[symbol]
        if symbol.security_type in (SecurityType.OPTION, SecurityType.INDEX_OPTION):
            index = algorithm._step_index
            if (
                index is None
                or not self._brokerage.tradable(symbol, index)
                or symbol.id.date.date() < algorithm.time.date()
            ):
                return f"The security with symbol '{symbol}' is marked as non-tradable."
        if security.price == 0:
            return zero_price_message(symbol)  # OrderResponseErrorCode.SecurityPriceZero
        if not security.has_data:
            return NO_DATA_MESSAGE  # OrderResponseErrorCode.SecurityHasNoData
        return ""

    def submit(  # noqa: PLR0917
        self, legs: Sequence[Leg], quantity: int, tag: str, asynchronous: bool, combo: bool, limit_price: float = 0.0
    ) -> List[OrderTicket]:
        algorithm = self._algorithm
        now = algorithm.utc_time
        orders_requested = [(leg.symbol, int(leg.quantity) * int(quantity)) for leg in legs]
        for symbol, leg_quantity in orders_requested:
            problem = self._check(symbol, leg_quantity)
            if problem:
                ticket = OrderTicket(-1, symbol, leg_quantity, tag, algorithm.time, status=OrderStatus.INVALID)
                ticket.message = problem
                return [ticket]
        group = None
        order_type = OrderType.COMBO_MARKET if combo else OrderType.MARKET
        limit: Optional[Tuple[float, int]] = None
        if combo:
            self._next_group_id += 1
            group = GroupOrderManager(self._next_group_id, int(quantity), len(legs))
            if limit_price:
                order_type = OrderType.COMBO_LIMIT
                group.limit_price = round_limit_price(limit_price, combo_limit_increment([leg.symbol for leg in legs]))
                limit = (group.limit_price, int(quantity))
        tickets: List[OrderTicket] = []
        for symbol, leg_quantity in orders_requested:
            self._next_order_id += 1
            order = Order(self._next_order_id, symbol, leg_quantity, order_type, tag, now, group_order_manager=group)
            if group is not None:
                group.order_ids.append(order.id)
            self._orders[order.id] = order
            ticket = OrderTicket(order.id, symbol, leg_quantity, tag, algorithm.time, order_type, transactions=self)
            self._tickets[order.id] = ticket
            tickets.append(ticket)
        self._crash_plan.point("order-submit", f"before {tag}")
        index = algorithm._step_index if algorithm._step_index is not None else -1
        at_step = algorithm.exchange_is_open_now()
        if limit is not None:
            ready = index + 1  # BacktestingBrokerage.Scan: only market orders fill on the bar they were placed
        elif not algorithm.live_mode:
            ready = index if at_step else index + 1
        else:
            ready = index if at_step and not asynchronous else index + 1
        broker_orders, rejects = self._brokerage.place(orders_requested, tag, now, ready, combo)
        if limit is not None:
            self._brokerage.make_combo_limit(broker_orders, *limit)
        for ticket, broker_order in zip(tickets, broker_orders, strict=True):
            order = self._orders[ticket.order_id]
            order.broker_id.append(broker_order.broker_id)
            self._by_broker_id[broker_order.broker_id] = order.id
        self._crash_plan.point("order-submit", f"after {tag}")
        submitted = [self._event(self._orders[t.order_id], OrderStatus.SUBMITTED, now) for t in tickets]
        if not algorithm.live_mode:
            # Backtest (BrokerageTransactionHandler.AddOrder -> BacktestingTransactionHandler.WaitForOrderSubmission
            # -> ProcessPendingRequests -> BacktestingBrokerage.PlaceOrder): SUBMITTED reaches on_order_event inside
            # this call, sync or async; the fill comes from BacktestingBrokerage.Scan in the time step's
            # ProcessSynchronousEvents, after the handler that placed the order returns (WaitForOrder does not
            # wait: SecurityTransactionManager.SetLiveMode sets MarketOrderFillTimeout to zero in backtests).
            self._dispatch(submitted)
            self.apply_updates(rejects)
            return tickets
        if asynchronous:
            self._pending_events.extend(submitted)
            if rejects:
                self._pending_events.extend(self._apply(rejects))
            return tickets
        self._dispatch(submitted)
        self.apply_updates(rejects)
        if at_step:
            self.apply_updates(self._brokerage.match(index, only={b.broker_id for b in broker_orders}))
        return tickets

    def process_synchronous_events(self, index: int) -> None:
        """Backtest: AlgorithmManager calls transactions.ProcessSynchronousEvents() after the scheduled events
        and after on_data of every time step; BacktestingBrokerage.Scan fills what is due."""
        if self._algorithm.live_mode:
            return
        self._process_pending_updates()
        self.apply_updates(self._brokerage.match(index))

    # -- events --

    def _event(  # noqa: PLR0917
        self,
        order: Order,
        status: OrderStatus,
        utc_time: datetime,
        fill: float = 0.0,
        price: float = 0.0,
        message: str = "",
        is_assignment: bool = False,
    ) -> OrderEvent:
        event_id = self._event_ids.get(order.id, 0) + 1
        self._event_ids[order.id] = event_id
        order.status = status
        return OrderEvent(
            order.id,
            event_id,
            order.symbol,
            utc_time,
            status,
            fill,
            price,
            order.quantity,
            message,
            is_assignment,
            ticket=self._tickets.get(order.id),
        )

    def _apply(self, updates: Sequence[BrokerUpdate]) -> List[OrderEvent]:
        """Apply a batch to orders and the portfolio; return its events (not yet dispatched)."""
        events = []
        for update in updates:
            order_id = self._by_broker_id.get(update.broker_id)
            if order_id is None:
                continue  # not ours (placed by an instance that died before it knew the ids)
            order = self._orders[order_id]
            utc = self._algorithm.to_utc(update.time)
            if update.kind == "fill":
                self._algorithm.apply_fill(order.symbol, update.quantity, update.price)
                status = OrderStatus.FILLED if update.complete else OrderStatus.PARTIALLY_FILLED
                order.last_fill_time = utc
                events.append(self._event(order, status, utc, update.quantity, update.price))
            elif update.kind == "cancel":
                events.append(self._event(order, OrderStatus.CANCELED, utc, message=update.message))
            elif update.kind == "reject":
                events.append(self._event(order, OrderStatus.INVALID, utc, message=update.message))
        return events

    def _exercise(self, update: BrokerUpdate) -> None:
        """One exercise order: its events applied and handled one at a time (EmitOptionNotificationEvents)."""
        exercise = update.exercise
        assert exercise is not None
        self._next_order_id += 1
        utc = self._algorithm.to_utc(update.time)
        order = Order(
            self._next_order_id, exercise.symbol, exercise.quantity, OrderType.OPTION_EXERCISE, exercise.tag, utc
        )
        self._orders[order.id] = order
        self._tickets[order.id] = OrderTicket(
            order.id, exercise.symbol, exercise.quantity, exercise.tag, update.time, OrderType.OPTION_EXERCISE
        )
        outcome = "Assigned" if exercise.is_assignment else "Automatic Exercise" if exercise.in_the_money else "OTM"
        message = f"{outcome}. Underlying: {exercise.underlying_price:g}"
        if exercise.is_assignment and exercise.tag:
            message = f"{message}. {exercise.tag}"
        self._algorithm.apply_fill(exercise.symbol, exercise.quantity, 0.0)
        self._algorithm.portfolio.cash += exercise.cash
        event = self._event(order, OrderStatus.FILLED, utc, exercise.quantity, 0.0, message, exercise.is_assignment)
        event.is_in_the_money = exercise.in_the_money
        self._dispatch([event])
        if exercise.underlying is None:
            return
        self._algorithm.apply_fill(exercise.underlying, exercise.underlying_quantity, exercise.strike)
        delivered = self._event(
            order,
            OrderStatus.FILLED,
            utc,
            exercise.underlying_quantity,
            exercise.strike,
            "Option Assignment" if exercise.is_assignment else "Option Exercise",
        )
        delivered.symbol = exercise.underlying
        delivered.is_in_the_money = True
        self._dispatch([delivered])

    def apply_updates(self, updates: Sequence[BrokerUpdate]) -> None:
        """LEAN's HandleOrderEvents: all of the batch reaches the portfolio, then the handler sees each event."""
        batch: List[BrokerUpdate] = []
        for update in updates:
            if update.kind != "exercise":
                batch.append(update)
                continue
            self._dispatch(self._apply(batch))
            batch = []
            self._exercise(update)
        if batch:
            self._dispatch(self._apply(batch))

    def deliver_pending(self) -> None:
        """Async SUBMITTED (and reject) events of orders placed since the previous step."""
        events, self._pending_events = self._pending_events, []
        self._dispatch(events)

    def _dispatch(self, events: Sequence[OrderEvent]) -> None:
        for event in events:
            ticket = self._tickets.get(event.order_id)
            if ticket is not None:
                ticket._apply(event)
            self.events.append(event)
            self._algorithm.dispatch_order_event(event)

    # -- restart --

    def load_open_orders(self, broker_orders: Sequence[BrokerOrder], now: datetime) -> List[Tuple[int, str]]:
        """LEAN's AddOpenOrder: each open broker order gets a new id, status SUBMITTED, no event
        (BrokerageTransactionHandler.cs).
        The quantity is the original order's (LEAN warns a partially filled ticket may be inaccurate)."""
        loaded = []
        for broker_order in broker_orders:
            self._next_order_id += 1
            order = Order(
                self._next_order_id,
                broker_order.symbol,
                broker_order.quantity,
                OrderType.MARKET,
                broker_order.tag,
                now,
                status=OrderStatus.SUBMITTED,
                broker_id=[broker_order.broker_id],
            )
            self._orders[order.id] = order
            ticket = OrderTicket(
                order.id, order.symbol, order.quantity, order.tag, now, status=OrderStatus.SUBMITTED, transactions=self
            )
            self._tickets[order.id] = ticket
            self._by_broker_id[broker_order.broker_id] = order.id
            loaded.append((order.id, broker_order.broker_id))
        return loaded


OrderEventHandler = Callable[[OrderEvent], None]
