"""Small fakes for the engine tests: a store with a memory/disk split, a broker that keeps holdings and open
orders across restarts (new LEAN ids, same broker ids, fills while down without events), a market view, rules
and a risk manager. No tests here; the engine test modules import these."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from core.params import Params
from core.ports import EventStatus, LegSpec, ListLog, OptionQuote, OrderEventData, SubmittedOrder
from core.records import (
    AuditRecord,
    BreakerLevel,
    DrawdownPoint,
    OrderGroupRecord,
    PositionRecord,
    Record,
    Right,
    RiskDaysRecord,
    RiskRecord,
    StrategyStateRecord,
)
from engine.engine import TradingEngine
from engine.risk import RiskManager, correlation_score, underlying_of
from strategies.base import EntryPlan, Strategy, StrategyConfig

T0 = datetime(2024, 1, 3, 10, 0)
EXP = date(2024, 5, 17)
NEAR = date(2024, 3, 15)
UNDERLYING = "SPY"


def leg(strike: float, quantity: int, expiry: date = EXP) -> LegSpec:
    return LegSpec(f"SPY-{expiry:%Y%m%d}-P-{strike:g}", UNDERLYING, Right.PUT, strike, expiry, quantity)


# the designed structure per unit: a 1-1-2 (long put, short put, two naked puts further out)
STRUCTURE: Tuple[LegSpec, ...] = (leg(440, 1), leg(435, -1), leg(400, -2, NEAR))


# ----------------------------------------------------------------------------------------------- store


@dataclass
class Loaded:
    strategies: Dict[str, StrategyStateRecord]
    groups: Dict[str, OrderGroupRecord]
    positions: Dict[str, PositionRecord]
    risk: Optional[RiskRecord]
    audit: Optional[AuditRecord]
    risk_days: Dict[str, RiskDaysRecord] = field(default_factory=dict)
    lost: List[str] = field(default_factory=list)
    stale: List[str] = field(default_factory=list)


class FakeStore:
    """Records by name. `memory` is what LEAN's store holds, `disk` what survived the last flush; a crash keeps
    only the disk (like LocalObjectStore losing pending saves), unless `crash(keep_memory=True)`."""

    def __init__(self, disk: Optional[Dict[str, Record]] = None) -> None:
        self.disk: Dict[str, Record] = dict(disk or {})
        self.memory: Dict[str, Record] = dict(self.disk)
        self.dirty: Dict[str, Record] = {}
        self.audits: List[Tuple[str, str, str]] = []
        self.refuse_puts = False
        self.flushes = 0
        self.puts: List[str] = []
        self.retired: List[str] = []

    def load_all(self) -> Loaded:
        recs = self.memory.values()
        return Loaded(
            strategies={r.strategy_id: r for r in recs if isinstance(r, StrategyStateRecord)},
            groups={r.group_id: r for r in recs if isinstance(r, OrderGroupRecord)},
            positions={r.position_id: r for r in recs if isinstance(r, PositionRecord)},
            risk=next((r for r in recs if isinstance(r, RiskRecord)), None),
            audit=None,
            risk_days={r.month: r for r in recs if isinstance(r, RiskDaysRecord)},
        )

    def put(self, record: Record, immediate: bool = True) -> bool:
        if not immediate:
            self.dirty[record.record_name] = record
            return True
        if self.refuse_puts:
            self.dirty[record.record_name] = record
            return False
        self.memory[record.record_name] = record
        self.dirty.pop(record.record_name, None)
        self.puts.append(record.record_name)
        return True

    def save_dirty(self) -> int:
        count = len(self.dirty)
        self.memory.update(self.dirty)
        self.dirty.clear()
        return count

    flush_failed = False

    def flush(self) -> bool:
        self.flushes += 1
        self.disk = dict(self.memory)
        return True

    def audit(self, kind: str, message: str, ref: str = "") -> None:
        self.audits.append((kind, message, ref))

    def retire(self, *record_names: str) -> bool:
        for name in record_names:
            self.memory.pop(name, None)
            self.dirty.pop(name, None)
            self.retired.append(name)
        return True

    def crash(self, keep_memory: bool = False) -> FakeStore:
        return FakeStore(self.memory if keep_memory else self.disk)


# ----------------------------------------------------------------------------------------------- broker


@dataclass
class FakeOrder:
    order_id: int
    symbol: str
    quantity: int
    tag: str
    broker_id: str
    filled: int = 0
    open: bool = True
    events: int = 0


class FakeBroker:
    """A broker + LEAN transactions. Holdings survive restarts; open orders survive with new LEAN ids.
    `engine` receives events (None = the algorithm is down: fills change holdings silently)."""

    def __init__(self, run_id: str = "run1") -> None:
        self._run_id = run_id
        self.orders: Dict[int, FakeOrder] = {}
        self.held: Dict[str, int] = {}
        self.average: Dict[str, float] = {}  # the broker's average price per held contract (LEAN average_price)
        self.next_id = 1
        self.next_broker_id = 1
        self.engine: Optional[TradingEngine] = None
        self.auto_fill = False  # fill every order in full, re-entrantly, before submit returns (backtest)
        self.refuse = False
        self.refuse_reason = "Insufficient buying power"
        self.refusals: Dict[str, str] = {}
        self.tags_kept = True
        self.on_submit: Optional[Callable[[str], None]] = None  # spy: called with the tag before anything happens
        self.submitted: List[Tuple[str, Tuple[Tuple[str, int], ...]]] = []
        self.sent: List[OrderEventData] = []
        # contracts LEAN has no price for yet (an order for them would be INVALID: SecurityPriceZero)
        self.unpriced: set[str] = set()
        self.refuse_unpriced = True
        self.fill_prices: Dict[str, float] = {}  # auto_fill price per symbol (default 1.0)
        # combo limit orders: the limit of each (tag -> every limit it had, first first); they fill like the
        # combo market orders above (the fake has no quotes of its own), unless `limits_fill` is False
        self.limits: Dict[str, List[float]] = {}
        self.limits_fill = True

    @property
    def run_id(self) -> str:
        return self._run_id

    def _new_order(self, symbol: str, quantity: int, tag: str) -> FakeOrder:
        order = FakeOrder(self.next_id, symbol, quantity, tag, f"B{self.next_broker_id}")
        self.next_id += 1
        self.next_broker_id += 1
        self.orders[order.order_id] = order
        return order

    def submit_combo(self, legs: Sequence[LegSpec], tag: str) -> List[SubmittedOrder]:
        if self.on_submit is not None:
            self.on_submit(tag)
        self.submitted.append((tag, tuple((leg.symbol, leg.quantity) for leg in legs)))
        if self.refuse or (self.refuse_unpriced and any(leg.symbol in self.unpriced for leg in legs)):
            self.refusals[tag] = self.refuse_reason
            return []
        orders = [self._new_order(leg.symbol, leg.quantity, tag) for leg in legs]
        for order in orders:
            self.emit(order, EventStatus.SUBMITTED, 0)
        if self.auto_fill:
            for order in orders:
                self.fill(order.order_id, order.quantity - order.filled, self.fill_prices.get(order.symbol, 1.0))
        return [SubmittedOrder(o.symbol, o.order_id, (o.broker_id,)) for o in orders]

    def submit_combo_limit(self, legs: Sequence[LegSpec], limit_price: float, tag: str) -> List[SubmittedOrder]:
        self.limits[tag] = [limit_price]
        auto_fill, self.auto_fill = self.auto_fill, self.auto_fill and self.limits_fill
        try:
            return self.submit_combo(legs, tag)
        finally:
            self.auto_fill = auto_fill

    def update_limit(self, order_id: int, limit_price: float) -> str:
        order = self.orders.get(order_id)
        if order is None or order.filled == order.quantity:
            return f"order {order_id} is not working"
        self.limits[order.tag].append(limit_price)
        return ""

    def refusal_reason(self, tag: str) -> str:
        return self.refusals.get(tag, "")

    def submit_single(self, leg: LegSpec, tag: str) -> Optional[SubmittedOrder]:
        if self.on_submit is not None:
            self.on_submit(tag)
        self.submitted.append((tag, ((leg.symbol, leg.quantity),)))
        if self.refuse or (self.refuse_unpriced and leg.symbol in self.unpriced):
            self.refusals[tag] = self.refuse_reason
            return None
        order = self._new_order(leg.symbol, leg.quantity, tag)
        self.emit(order, EventStatus.SUBMITTED, 0)
        if self.auto_fill:
            self.fill(order.order_id, order.quantity, self.fill_prices.get(order.symbol, 1.0))
        return SubmittedOrder(order.symbol, order.order_id, (order.broker_id,))

    def symbols_without_price(self, legs: Sequence[LegSpec]) -> List[str]:
        return [leg.symbol for leg in legs if leg.symbol in self.unpriced]

    def emit(self, order: FakeOrder, status: EventStatus, quantity: int, price: float = 1.0) -> None:
        order.events += 1
        event = OrderEventData(
            order.order_id, order.events, order.symbol, status, quantity, price, order.tag, T0, (order.broker_id,)
        )
        self.sent.append(event)
        if self.engine is not None:
            self.engine.on_order_event(event)

    def fill(self, order_id: int, quantity: int, price: float = 1.0) -> int:
        """Fill up to `quantity` (signed like the order) of an open order; returns what filled."""
        order = self.orders[order_id]
        left = order.quantity - order.filled
        if not order.open or quantity == 0 or (quantity > 0) != (left > 0):
            return 0
        quantity = quantity if abs(quantity) <= abs(left) else left
        order.filled += quantity
        before = self.held.get(order.symbol, 0)
        self.held[order.symbol] = before + quantity
        if self.held[order.symbol] == 0:
            del self.held[order.symbol]
            self.average.pop(order.symbol, None)
        elif before == 0 or (before > 0) != (self.held[order.symbol] > 0):
            self.average[order.symbol] = price  # opened (or flipped): a new average
        elif (before > 0) == (quantity > 0):
            self.average[order.symbol] = (self.average[order.symbol] * before + price * quantity) / (before + quantity)
        done = order.filled == order.quantity
        order.open = not done
        self.emit(order, EventStatus.FILLED if done else EventStatus.PARTIALLY_FILLED, quantity, price)
        return quantity

    def cancel(self, order_id: int) -> None:
        order = self.orders.get(order_id)
        if order is not None and order.open:
            order.open = False
            self.emit(order, EventStatus.CANCELED, 0)

    def holdings(self) -> Mapping[str, int]:
        return dict(self.held)

    def average_prices(self) -> Mapping[str, float]:
        return {symbol: self.average.get(symbol, 0.0) for symbol in self.held}

    def open_order_ids(self) -> Sequence[int]:
        return [oid for oid, o in sorted(self.orders.items()) if o.open]

    def order_ids_for_broker_id(self, broker_id: str) -> Sequence[int]:
        return [oid for oid, o in sorted(self.orders.items()) if o.broker_id == broker_id]

    def open_orders_with_tag(self, tag: str) -> Sequence[SubmittedOrder]:
        """The tag lookup (LEAN: transactions.get_open_orders() with .tag); finds nothing when `tags_kept` is
        False, as with a brokerage that drops tags."""
        if not self.tags_kept:
            return []
        return [
            SubmittedOrder(o.symbol, oid, (o.broker_id,))
            for oid, o in sorted(self.orders.items())
            if o.open and o.tag == tag
        ]

    def restart(self, run_id: str, keep_open_orders: bool = True) -> None:
        """A LEAN restart: open orders come back with new ids (same broker id), closed ones are forgotten."""
        self._run_id = run_id
        survivors = [o for o in self.orders.values() if o.open and keep_open_orders]
        self.orders = {}
        for order in survivors:
            order.order_id = self.next_id
            order.events = 0
            self.next_id += 1
            self.orders[order.order_id] = order


# ----------------------------------------------------------------------------------------------- market, rules, risk


@dataclass
class FakeView:
    now: datetime = T0
    underlying: str = UNDERLYING
    price: Optional[float] = 470.0
    open_price: Optional[float] = 470.0
    vix: Optional[float] = 15.0
    equity: float = 100_000.0
    market_open: bool = True
    margin_used: Optional[float] = None  # None: the engine estimates it from the open positions
    session_close: Optional[datetime] = None
    quotes: Mapping[str, OptionQuote] = field(default_factory=dict)

    def chain(self) -> Sequence[OptionQuote]:
        return ()

    def quote(self, symbol: str) -> Optional[OptionQuote]:
        return self.quotes.get(symbol)


@dataclass(frozen=True)
class FakeConfig(StrategyConfig):
    PARAMETER_PREFIX: ClassVar[str] = "fake"

    bp_per_position: float = 0.06  # as much as LT112's: the buying-power tests count with it


class FakeRules(Strategy[FakeConfig]):
    """A strategy through the one API: enters whenever `want_entry` (units of STRUCTURE), exits whenever
    `want_exit`. Its id is per instance (the engine tests run several)."""

    config_type = FakeConfig

    def __init__(self, strategy_id: str = "s1", units: int = 1) -> None:
        super().__init__(FakeConfig(), Params())
        self.strategy_id = strategy_id  # type: ignore[misc]
        self.units = units
        self.want_entry = True
        self.want_exit = False
        self.entry_calls = 0

    def entry_plan(self, view: FakeView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        self.entry_calls += 1
        if not self.want_entry:
            return self.skip("test: no entry wanted", routine=True)
        legs = tuple(replace(leg_, quantity=leg_.quantity * self.units) for leg_ in STRUCTURE)
        return EntryPlan(self.strategy_id, legs, self.units, -1.5, 150.0, 300.0, NEAR, (400.0, 435.0, 440.0), "test")

    def exit_reason(self, view: FakeView, position: PositionRecord) -> Optional[str]:
        return "test exit" if self.want_exit else None


class FakeRisk:
    kill_switch = ""  # what kill_switch_status says

    def kill_switch_status(self) -> str:
        return self.kill_switch

    def __init__(self, record: Optional[RiskRecord], params: Params, now: datetime) -> None:
        self._record = record or RiskRecord(100_000.0, 0, 0.0, None, 0.0, BreakerLevel.NONE, None, (), now)
        self._params = params
        self.allow = True
        self.close_all = False
        self.closed: List[str] = []
        self.days: List[Tuple[date, float]] = []
        self.correlation_calls = 0

    @property
    def record(self) -> RiskRecord:
        return self._record

    def update_equity(self, equity: float, now: datetime) -> bool:
        return False

    def end_of_day(self, day: date, equity: float) -> Optional[DrawdownPoint]:
        self.days.append((day, equity))
        return DrawdownPoint(day, equity, 0.0)

    def on_position_closed(self, position: PositionRecord, now: datetime) -> bool:
        if position.position_id in self._record.applied_position_ids:
            return False
        self.closed.append(position.position_id)
        self._record = replace(
            self._record, applied_position_ids=(*self._record.applied_position_ids, position.position_id)
        )
        return True

    def entries_allowed(self, vix: Optional[float], strategy_id: str = "") -> bool:
        return self.allow

    def size_factor(self, strategy_id: str = "") -> float:
        return 1.0

    def close_all_required(self) -> bool:
        return self.close_all

    def update_correlation(self, open_positions: Sequence[PositionRecord], now: datetime) -> bool:
        self.correlation_calls += 1
        score = correlation_score([underlying_of(p) for p in open_positions])  # the real rule
        if score == self._record.correlation_score:
            return False
        self._record = replace(self._record, correlation_score=score, updated_at=now)
        return True

    def max_bp_fraction(self, vix: Optional[float]) -> float:
        return RiskManager(None, self._params, self._record.updated_at).max_bp_fraction(vix)  # the real table


@dataclass
class Rig:
    store: FakeStore
    broker: FakeBroker
    rules: FakeRules
    engine: TradingEngine
    log: ListLog


def make_engine(
    store: FakeStore, broker: FakeBroker, rules: FakeRules, now: datetime = T0, *, warm: bool = True
) -> Rig:
    log = ListLog()
    engine = TradingEngine(store, broker, Params(), log, [rules], risk_factory=FakeRisk)
    broker.engine = engine
    engine.start(now)
    if warm:
        engine.on_warmup_finished(FakeView(now=now))
    return Rig(store, broker, rules, engine, log)
