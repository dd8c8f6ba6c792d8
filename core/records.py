"""Record types: the facts the template persists, and nothing else.

Every record is a frozen dataclass made of plain values (str, int, float, bool, date, datetime, Decimal,
enums, tuples of those, nested records). Derived or temporary values (prices, buying power, counters that
can be recomputed) have no field here, and `FORBIDDEN_FIELDS` makes sure none is ever added: a stored
body that carries one is refused by `records_codec.record_from_body` and quarantined.

Each record knows its storage *name* (`record_name`), which the key builder turns into an ObjectStore key.
One fact has one home: positions can be rebuilt from their entry group, risk folds closed positions by id,
so a crash that flushes only some keys still loads into a state recovery can make consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Optional, Tuple, Union


class StrategyState(StrEnum):
    WAITING = "WAITING"  # flat, looking for an entry
    ENTERING = "ENTERING"  # entry group written ahead and (being) submitted
    ACTIVE = "ACTIVE"  # position open and managed
    EXITING = "EXITING"  # exit (or rollback) group submitted
    CLOSED = "CLOSED"  # cycle finished; the next transition is back to WAITING
    ERROR = "ERROR"  # something failed; no new orders until recovery
    RECOVERING = "RECOVERING"  # start-up recovery or an adopted untracked position


class Right(StrEnum):
    PUT = "P"
    CALL = "C"


class LegStatus(StrEnum):
    PENDING = "PENDING"  # saved, not yet submitted
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    INVALID = "INVALID"


class GroupPurpose(StrEnum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"
    ROLLBACK = "ROLLBACK"  # closes the filled legs of an incomplete group
    COMPLETION = "COMPLETION"  # re-submits the pending legs of an incomplete group
    # what the broker did to a held contract without an order of ours: exercise, assignment or expiry (the
    # contract closed at 0, or at its intrinsic value when cash-settled) and any shares delivered at the strike;
    # also the sale of those shares (engine/exercise.py)
    SETTLEMENT = "SETTLEMENT"
    # closes whole units of an open position at the owning strategy's request (Strategy.adjustment: a partial
    # close); the position stays open with the rest, which its holdings (engine/facts.py) account for
    REDUCE = "REDUCE"


# the purposes whose fills open a position (an entry and the completion of an incomplete entry)
OPENING_PURPOSES = frozenset({GroupPurpose.ENTRY, GroupPurpose.COMPLETION})


class GroupStatus(StrEnum):
    PENDING = "PENDING"  # written ahead; no order placed yet
    SUBMITTED = "SUBMITTED"  # orders placed, nothing filled yet
    INCOMPLETE = "INCOMPLETE"  # some legs (or part of a leg) filled, others not
    FILLED = "FILLED"  # every leg fully filled
    CANCELED = "CANCELED"  # nothing filled and nothing open any more
    FAILED = "FAILED"  # refused (invalid) or abandoned with nothing filled
    RESOLVED = "RESOLVED"  # an incomplete group whose recovery group finished (completion or rollback)


class PositionStatus(StrEnum):
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


class BreakerLevel(StrEnum):
    NONE = "NONE"
    HALVE = "HALVE"  # drawdown past the first threshold: new positions at half size
    NO_NEW = "NO_NEW"  # no new entries
    CLOSE_ALL = "CLOSE_ALL"  # close everything and pause


@dataclass(frozen=True)
class Fact:
    """One of a strategy's own per-position facts (strategies.base.EntryPlan.facts): a name and a number."""

    name: str
    value: float


@dataclass(frozen=True)
class TransitionEntry:
    from_state: StrategyState
    to_state: StrategyState
    at: datetime
    reason: str


@dataclass(frozen=True)
class StrategyStateRecord:
    strategy_id: str
    state: StrategyState
    previous: Optional[StrategyState]
    changed_at: datetime
    reason: str
    history: Tuple[TransitionEntry, ...] = ()  # bounded by the strategy (newest last)
    position_id: Optional[str] = None  # the position this cycle is about
    group_id: Optional[str] = None  # the order group in flight (entry, exit, rollback, completion)
    last_entry_day: Optional[date] = None  # the trading day of the last entry: no second entry that day/cycle
    params_hash: str = ""

    @property
    def record_name(self) -> str:
        return f"strategy-{self.strategy_id}"


@dataclass(frozen=True)
class LegRecord:
    """One leg of an order group. `quantity` is signed (+ buy, - sell) per one unit of the group."""

    symbol: str  # contract key, see core.contracts.contract_key
    underlying: str
    right: Right
    strike: float
    expiry: date
    quantity: int  # total signed quantity of this leg (already multiplied by the group quantity)
    filled_quantity: int = 0  # signed, same sign as quantity, |filled| <= |quantity|
    avg_fill_price: float = 0.0
    status: LegStatus = LegStatus.PENDING
    order_ids: Tuple[int, ...] = ()  # LEAN order ids, valid only inside OrderGroupRecord.run_id
    broker_ids: Tuple[str, ...] = ()
    fill_keys: Tuple[str, ...] = ()  # applied fill events "run/order_id/event_id", newest last, bounded


@dataclass(frozen=True)
class OrderGroupRecord:
    group_id: str  # also the order tag, so events map to the group even before order ids are known
    strategy_id: str
    purpose: GroupPurpose
    position_id: str
    legs: Tuple[LegRecord, ...]
    status: GroupStatus
    created_at: datetime
    updated_at: datetime
    run_id: str  # the run whose LEAN order ids the legs hold
    parent_group_id: Optional[str] = None  # for ROLLBACK/COMPLETION: the incomplete group they resolve
    decision: Optional[str] = None  # recovery decision text, persisted before acting on it
    # the entry plan's facts (ENTRY groups; None elsewhere), saved with the group before its orders so that a
    # crash before the position is built cannot lose them: targets for the whole position, in account currency
    profit_target: Optional[float] = None
    max_loss: Optional[float] = None  # positive
    entry_vix: Optional[float] = None  # VIX when the entry was decided (None: no VIX data)
    # v3: the credit the targets were computed from (at mid, whole position, positive), the contracts whose fills
    # make up that credit, and an absolute cap of the stop (None: none). When the entry fills, the position's
    # targets are re-based on the credit actually received: the same plan, no parameter read again.
    credit: Optional[float] = None
    credit_symbols: Tuple[str, ...] = ()
    stop_cap: Optional[float] = None
    # v4: the strategy's own facts of the plan (strategies.base.EntryPlan.facts), sorted by name; the position
    # built from this entry takes them over
    facts: Tuple[Fact, ...] = ()

    @property
    def record_name(self) -> str:
        return f"group-{self.group_id}"


@dataclass(frozen=True)
class ContractRecord:
    symbol: str
    right: Right
    strike: float
    expiry: date
    quantity: int  # signed contracts held by this position


@dataclass(frozen=True)
class PositionRecord:
    position_id: str
    strategy_id: str
    entry_group_id: str
    entry_time: datetime
    entry_price: float  # net price per unit of the structure; negative = credit received
    contracts: Tuple[ContractRecord, ...]
    expiry: date  # nearest expiry among the contracts
    strikes: Tuple[float, ...]
    entry_vix: Optional[float]
    profit_target: float  # in account currency, for the whole position
    max_loss: float  # in account currency, positive number
    params_hash: str
    status: PositionStatus = PositionStatus.OPEN
    exit_time: Optional[datetime] = None
    realized_pnl: Optional[float] = None
    note: str = ""  # e.g. "adopted by recovery", "quantity mismatch resolved"
    # NEEDS ATTENTION (empty: nothing to look at): why a person must look at this position, e.g. recovery gave up
    # on orders the broker kept refusing. The position is still managed (exit rules, breakers, CLOSE_ALL); the
    # text names what was refused and the broker's reason. Persisted, so a restart neither forgets it nor sends
    # the refused orders again blindly.
    attention: str = ""
    # v4: the credit actually received for the legs the targets measure (the NPs of an LT112, every leg of a
    # 0DTE), from the entry fills, account currency, positive; None when unknown (an older or adopted position)
    credit_received: Optional[float] = None
    # v5: the owning strategy's own per-position facts, sorted by name (Strategy.fact reads them); () for a
    # position opened before v5 or adopted by recovery
    facts: Tuple[Fact, ...] = ()

    @property
    def record_name(self) -> str:
        return f"position-{self.position_id}"


@dataclass(frozen=True)
class DrawdownPoint:
    """End-of-day figure kept for research and audits (a past fact, not a live value)."""

    day: date
    equity: float
    drawdown: float  # fraction below the peak at that day's close


@dataclass(frozen=True)
class StrategyLosses:
    """One strategy's own loss memory: its losing streak and today's realised loss (one strategy's stops never
    change another's size or switch it off)."""

    strategy_id: str
    consecutive_losses: int
    daily_loss: float  # positive, account currency, realised on daily_loss_day
    daily_loss_day: Optional[date]


@dataclass(frozen=True)
class RiskRecord:
    """The risk facts the breakers and entry limits decide from. Small and history-free, because it is written
    the moment any of them changes (a new peak can come on every bar): the cost of that write must not grow
    with the run. The live drawdown is not stored (it follows from the peak and the broker's equity); the
    daily drawdown history lives in `RiskDaysRecord` chunks."""

    peak_equity: float
    consecutive_losses: int
    daily_loss: float  # realised loss today, positive number, in account currency
    daily_loss_day: Optional[date]
    correlation_score: float  # positions per correlation group over the group's limit, max over groups
    breaker: BreakerLevel
    breaker_since: Optional[datetime]
    # closed positions already folded in, newest last; bounded (params.risk_history_limit): only positions not
    # yet retired into the archive can be folded again
    applied_position_ids: Tuple[str, ...]
    updated_at: datetime
    strategy_losses: Tuple[StrategyLosses, ...] = ()  # per strategy, sorted by id (v2)
    # v4: the true high-water mark, never lowered (peak_equity is re-based when a pause ends): CLOSE_ALL also
    # fires at risk_close_all_drawdown below it, so chained pauses cannot walk the close-all line down
    high_water_mark: float = 0.0
    # v5: the kill switch (engine/risk.py): tripped since when (None: not tripped) and why; only a person resets
    # it, by setting parameter kill-switch-reset to a value other than `kill_switch_token` (its value at the trip)
    kill_switch_since: Optional[datetime] = None
    kill_switch_reason: str = ""
    kill_switch_token: str = ""

    @property
    def record_name(self) -> str:
        return "risk"


RISK_DAYS_PREFIX = "risk-days-"


@dataclass(frozen=True)
class RiskDaysRecord:
    """The end-of-day drawdown points of one calendar month (research figures, never a decision input).
    Twelve chunks named by month number form a ring: a month's chunk replaces the same month of the year
    before, so a year of history is kept, each day's save re-encodes one month at most, and keys and bytes
    stay flat however long the algorithm runs."""

    month: str  # "2024-03"; every point's day lies in it
    points: Tuple[DrawdownPoint, ...]  # oldest first, one per trading day

    @property
    def record_name(self) -> str:
        return RISK_DAYS_PREFIX + self.month[5:7]


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str  # e.g. "recovery", "quarantine", "orphan-cleaned", "save-failed", "breaker"
    message: str
    ref: str = ""  # record name or group id the entry is about


@dataclass(frozen=True)
class AuditRecord:
    entries: Tuple[AuditEntry, ...]  # bounded by count and bytes, newest last

    @property
    def record_name(self) -> str:
        return "audit"


Record = Union[StrategyStateRecord, OrderGroupRecord, PositionRecord, RiskRecord, RiskDaysRecord, AuditRecord]

# schema name per record type; the envelope carries it and the loader dispatches on it
SCHEMA_OF = {
    StrategyStateRecord: "strategy_state",
    OrderGroupRecord: "order_group",
    PositionRecord: "position",
    RiskRecord: "risk",
    RiskDaysRecord: "risk_days",
    AuditRecord: "audit",
}

# Names that mean a derived or temporary value. A record type must never declare one, and a stored body
# that carries one is refused (it is not ours, or it was written by a buggy fork).
FORBIDDEN_FIELDS = frozenset(
    {
        "current_price",
        "last_price",
        "price",
        "bid",
        "ask",
        "mid",
        "market_value",
        "unrealized_pnl",
        "buying_power",
        "margin_remaining",
        "tick_count",
        "ticks",
        "bar_count",
        "greeks",
        "delta",
        "iv",
    }
)


def _check_no_forbidden_fields() -> None:
    nested = [LegRecord, ContractRecord, TransitionEntry, AuditEntry, DrawdownPoint, StrategyLosses, Fact]
    for cls in [*SCHEMA_OF, *nested]:
        if not is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        bad = {f.name for f in fields(cls)} & FORBIDDEN_FIELDS
        if bad:
            raise TypeError(f"{cls.__name__} declares derived fields {sorted(bad)}; records hold facts only")


_check_no_forbidden_fields()

__all__ = [
    "FORBIDDEN_FIELDS",
    "OPENING_PURPOSES",
    "RISK_DAYS_PREFIX",
    "SCHEMA_OF",
    "AuditEntry",
    "AuditRecord",
    "BreakerLevel",
    "ContractRecord",
    "DrawdownPoint",
    "Fact",
    "GroupPurpose",
    "GroupStatus",
    "LegRecord",
    "LegStatus",
    "OrderGroupRecord",
    "PositionRecord",
    "PositionStatus",
    "Record",
    "Right",
    "RiskDaysRecord",
    "RiskRecord",
    "StrategyLosses",
    "StrategyState",
    "StrategyStateRecord",
    "TransitionEntry",
]
