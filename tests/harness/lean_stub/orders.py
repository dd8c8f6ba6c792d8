"""Leg, Order, OrderTicket, OrderEvent with LEAN's Python member names (Common/Orders: Leg, Order, OrderTicket,
OrderEvent).

Plain data; the behaviour (ids, event order, fills) lives in tests/harness/transactions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, List, Optional

from tests.harness.lean_stub.enums import OrderDirection, OrderStatus, OrderType
from tests.harness.lean_stub.symbols import Symbol


@dataclass
class Leg:
    symbol: Symbol
    quantity: int
    order_price: Optional[float] = None

    @staticmethod
    def create(symbol: Symbol, quantity: int, limit_price: Optional[float] = None) -> Leg:
        return Leg(symbol, int(quantity), limit_price)


@dataclass
class GroupOrderManager:
    """Common/Orders/GroupOrderManager.cs: one per combo, shared by its legs. `limit_price` is the combo's
    (ComboLimitOrder keeps it here, not on the legs); `direction` is the sign of the combo quantity."""

    id: int
    quantity: int
    count: int
    order_ids: List[int] = field(default_factory=list)
    limit_price: float = 0.0

    @property
    def direction(self) -> OrderDirection:
        if self.quantity > 0:
            return OrderDirection.BUY
        return OrderDirection.SELL if self.quantity < 0 else OrderDirection.HOLD


@dataclass
class Order:
    id: int
    symbol: Symbol
    quantity: int
    type: OrderType
    tag: str
    time: datetime
    status: OrderStatus = OrderStatus.NEW
    broker_id: List[str] = field(default_factory=list)
    group_order_manager: Optional[GroupOrderManager] = None
    last_fill_time: Optional[datetime] = None
    price: float = 0.0

    @property
    def direction(self) -> OrderDirection:
        return OrderDirection.BUY if self.quantity > 0 else OrderDirection.SELL


@dataclass
class OrderEvent:
    order_id: int
    id: int
    symbol: Symbol
    utc_time: datetime
    status: OrderStatus
    fill_quantity: float = 0.0
    fill_price: float = 0.0
    quantity: float = 0.0
    message: str = ""
    is_assignment: bool = False
    is_in_the_money: bool = False
    ticket: Optional[OrderTicket] = None

    @property
    def absolute_fill_quantity(self) -> float:
        return abs(self.fill_quantity)

    @property
    def direction(self) -> OrderDirection:
        return OrderDirection.BUY if self.fill_quantity > 0 else OrderDirection.SELL


@dataclass
class OrderTicket:
    order_id: int
    symbol: Symbol
    quantity: int
    tag: str
    time: datetime
    order_type: OrderType = OrderType.MARKET
    status: OrderStatus = OrderStatus.NEW
    quantity_filled: float = 0.0
    average_fill_price: float = 0.0
    order_events: List[OrderEvent] = field(default_factory=list)
    message: str = ""
    transactions: Any = field(default=None, repr=False, compare=False)  # the harness's Transactions

    def update_limit_price(self, limit_price: float, tag: Optional[str] = None) -> OrderResponse:
        """Common/Orders/OrderTicket.cs `UpdateLimitPrice`: an UpdateOrderRequest with only the limit price
        (tests/harness/transactions.py `update_limit_price` follows its handling)."""
        if self.transactions is None:
            return OrderResponse(False, f"Unable to locate order with id {self.order_id}.")
        response: OrderResponse = self.transactions.update_limit_price(self.order_id, float(limit_price), tag)
        return response

    @property
    def quantity_remaining(self) -> float:
        return self.quantity - self.quantity_filled

    @property
    def submit_request(self) -> SubmitOrderRequest:
        """LEAN Common/Orders/OrderTicket.cs (commit 24863901), SubmitRequest: a ticket refused by the
        pre-order checks (OrderTicket.InvalidSubmitRequest) carries the reason in Response.ErrorMessage."""
        return SubmitOrderRequest(OrderResponse(not self.message, self.message))

    def _apply(self, event: OrderEvent) -> None:
        """Updated with each event before the handler sees it (OrderEvent.Ticket)."""
        self.order_events.append(event)
        self.status = event.status
        if event.fill_quantity:
            filled = self.quantity_filled + event.fill_quantity
            if filled:
                self.average_fill_price = (
                    self.average_fill_price * self.quantity_filled + event.fill_price * event.fill_quantity
                ) / filled
            self.quantity_filled = filled


@dataclass
class OrderResponse:
    """LEAN Common/Orders/OrderResponse.cs: is_success, is_error, error_message."""

    is_success: bool
    error_message: str = ""

    @property
    def is_error(self) -> bool:
        return not self.is_success


@dataclass
class SubmitOrderRequest:
    """LEAN Common/Orders/SubmitOrderRequest.cs: only `response` (OrderRequest.Response) is modelled."""

    response: OrderResponse
