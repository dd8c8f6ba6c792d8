"""What the trading side needs from LEAN, as plain data and protocols.

main.py (the only module that imports LEAN) turns LEAN objects into these and implements the protocols;
the tests drive the same code through the offline harness, which runs the unchanged main.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import List, Mapping, Optional, Protocol, Sequence, Tuple

from core.records import Right


@dataclass(frozen=True)
class OptionQuote:
    """One contract of a chain at one moment: used to select strikes and to mark positions."""

    symbol: str  # contract_key(underlying, expiry, right, strike)
    underlying: str
    right: Right
    strike: float
    expiry: date
    bid: float
    ask: float
    delta: Optional[float]  # None when the data has no greeks: selection falls back to the percent rule

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


class MarketView(Protocol):
    """The market as of the current slice. Times are naive New York time, like LEAN's `self.time`."""

    @property
    def now(self) -> datetime: ...

    @property
    def underlying(self) -> str: ...

    @property
    def price(self) -> Optional[float]:
        """Last underlying price; None before the first bar."""
        ...

    @property
    def open_price(self) -> Optional[float]:
        """Today's regular-session open of the underlying; None before 09:31."""
        ...

    @property
    def vix(self) -> Optional[float]: ...

    @property
    def equity(self) -> float:
        """Total portfolio value."""
        ...

    @property
    def market_open(self) -> bool: ...

    @property
    def session_close(self) -> Optional[datetime]:
        """Today's regular-session close (13:00 on an early-close day, LEAN: the exchange hours' next market
        close); None when the platform cannot tell (the rules then assume the regular 16:00 close)."""
        ...

    @property
    def margin_used(self) -> Optional[float]:
        """Buying power in use by everything held, in account currency (LEAN: portfolio.total_margin_used);
        None when the platform cannot tell (the engine then estimates it from the open positions)."""
        ...

    def chain(self) -> Sequence[OptionQuote]:
        """The option chain now (may be empty). Built on demand: only call it when deciding."""
        ...

    def quote(self, symbol: str) -> Optional[OptionQuote]:
        """The current quote of one contract we hold or ordered, if the data has one."""
        ...


@dataclass(frozen=True)
class LegSpec:
    """A leg to order: signed quantity per one unit of the combo."""

    symbol: str
    underlying: str
    right: Right
    strike: float
    expiry: date
    quantity: int


@dataclass(frozen=True)
class SubmittedOrder:
    symbol: str
    order_id: int
    broker_ids: Tuple[str, ...] = ()


class EventStatus(StrEnum):
    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    INVALID = "INVALID"
    CANCEL_PENDING = "CANCEL_PENDING"
    UPDATE_SUBMITTED = "UPDATE_SUBMITTED"


@dataclass(frozen=True)
class OrderEventData:
    """One LEAN OrderEvent, converted. `fill_quantity` is signed and is the fill of this event only."""

    order_id: int
    event_id: int  # OrderEvent.id: 1, 2, 3… within the order; (order_id, event_id) unique within a run
    symbol: str  # contract key
    status: EventStatus
    fill_quantity: int
    fill_price: float
    tag: str  # our group id, when the order still carries it
    utc_time: datetime
    broker_ids: Tuple[str, ...] = ()
    is_assignment: bool = False
    message: str = ""
    # LEAN's OptionExercise order events (exercise, assignment, expiry): the contract fills at 0 for the closing
    # quantity, then, physically settled and in the money, the underlying at the strike under the same order id
    exercise: bool = False  # the order is an OrderType.OPTION_EXERCISE
    in_the_money: bool = False  # OrderEvent.is_in_the_money
    cash_settled: bool = False  # the contract settles in cash (index options), not in shares
    underlying_price: Optional[float] = None  # the underlying's close the exercise was judged on


class BrokerPort(Protocol):
    """Order placement and holdings. Implemented by main.py over QCAlgorithm."""

    @property
    def run_id(self) -> str:
        """Identifies this run; LEAN order ids are only meaningful inside one run."""
        ...

    def submit_combo(self, legs: Sequence[LegSpec], tag: str) -> List[SubmittedOrder]:
        """Place all legs as one combo market order tagged `tag`. Order events may arrive (re-entrantly)
        before this returns. Returns one SubmittedOrder per leg; an empty list means refused."""
        ...

    def submit_combo_limit(self, legs: Sequence[LegSpec], limit_price: float, tag: str) -> List[SubmittedOrder]:
        """Place all legs as one combo LIMIT order tagged `tag` (LEAN: QCAlgorithm.ComboLimitOrder). `limit_price`
        is signed, per unit of the legs reduced by their greatest common divisor: positive pays at most that
        debit, negative receives at least that credit (core/combo_limits.py says how LEAN fills it; a credit
        limit below 0 never fills for a debit). LEAN rounds it to `core.combo_limits.limit_tick`. A zero limit
        is refused (LEAN throws), with the reason in `refusal_reason(tag)`. Returns one SubmittedOrder per leg;
        empty means refused. It does not fill on the bar it is placed."""
        ...

    def update_limit(self, order_id: int, limit_price: float) -> str:
        """Move the limit of the working combo limit order that `order_id` (any of its legs) belongs to; the
        whole group takes it (LEAN: OrderTicket.UpdateLimitPrice -> ComboLimitOrder.ApplyUpdateOrderRequest). ""
        when accepted, else the reason (e.g. the order is already filled or canceled). To give up, `cancel`
        any leg: LEAN cancels every leg of the group."""
        ...

    def submit_single(self, leg: LegSpec, tag: str) -> Optional[SubmittedOrder]:
        """Place one leg as a market order (used to complete or roll back single legs)."""
        ...

    def symbols_without_price(self, legs: Sequence[LegSpec]) -> Sequence[str]:
        """Subscribe each leg's contract and return the symbols whose security has no price or no data yet.
        LEAN refuses an order for such a security (Algorithm/QCAlgorithm.Trading.cs `PreOrderChecksImpl`:
        `SecurityPriceZero`, `SecurityHasNoData`); a contract added right before ordering has none until its
        first data arrives (or LEAN seeds it)."""
        ...

    def cancel(self, order_id: int) -> None: ...

    def holdings(self) -> Mapping[str, int]:
        """Signed contract quantities of every option position held, by contract key."""
        ...

    def average_prices(self) -> Mapping[str, float]:
        """The broker's average price per contract of every option position held, by contract key (LEAN:
        portfolio[symbol].average_price). Prices the fills that happened while the algorithm was down."""
        ...

    def open_order_ids(self) -> Sequence[int]: ...

    def order_ids_for_broker_id(self, broker_id: str) -> Sequence[int]:
        """LEAN ids that a live restart gave to an open order we knew by broker id."""
        ...

    def refusal_reason(self, tag: str) -> str:
        """The broker's (or LEAN's pre-order check's) reason for the latest refused order tagged `tag`; "" when
        none was given. LEAN: an invalid ticket's submit_request.response.error_message (OrderTicket.cs,
        InvalidSubmitRequest)."""
        ...

    def open_orders_with_tag(self, tag: str) -> Sequence[SubmittedOrder]:
        """The open orders carrying `tag` (our group id), with their current LEAN ids and broker ids. After a
        restart this re-binds a group whose broker ids were lost with unflushed saves, as long as the brokerage
        kept the tag (Order.Tag; BrokerageTransactionHandler.AddOpenOrder); a brokerage that drops tags returns nothing
        here."""
        ...


class LogPort(Protocol):
    def info(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...


class ListLog:
    """A LogPort that keeps messages; used by tests, the harness and the benchmark."""

    def __init__(self) -> None:
        self.infos: List[str] = []
        self.errors: List[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def error(self, message: str) -> None:
        self.errors.append(message)
