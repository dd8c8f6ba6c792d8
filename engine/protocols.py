"""What the trading engine needs from its collaborators, as protocols, and what it shows the outside.

The engine is written against these structural types, not the concrete classes, so it can be tested with
small fakes and so the concrete modules (persistence.store.StateStore, engine.risk.RiskManager,
strategies.base rules) only have to *fit*, not inherit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Mapping, Optional, Protocol, Sequence, Tuple

from core.records import (
    AuditRecord,
    DrawdownPoint,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Record,
    RiskDaysRecord,
    RiskRecord,
    StrategyStateRecord,
)

# A group whose orders sat unfilled this long is cancelled; an incomplete group whose remaining legs are still
# open this long has them cancelled so it can be decided (a second order on an open leg could double-fill).
UNFILLED_ORDER_TIMEOUT = timedelta(minutes=5)
# An incomplete group whose recovery orders the broker refused this many times is given up: its strategy goes to
# ERROR and a human looks (a broker that refuses an order will refuse it again). Unfilled-and-cancelled recovery
# orders are retried without limit: completing or rolling back is always safer than a naked leg.
MAX_RECOVERY_ATTEMPTS = 3
# An exit the broker refuses or leaves unfilled is retried with a bound and a change of route: the first
# EXIT_COMBO_ATTEMPTS as one combo order, then legging out one order per leg with the buys first (a short is
# bought back before the long that protects it is sold; a refused buy stops the sells after it). After
# MAX_EXIT_ATTEMPTS failed exits the position is flagged NEEDS ATTENTION (persisted, PositionRecord.attention):
# an alert, then at most one exit attempt a day. Never the same refused order bar after bar.
EXIT_COMBO_ATTEMPTS = 2
MAX_EXIT_ATTEMPTS = 4


class LoadedState(Protocol):
    """persistence.store.LoadResult, as far as the engine reads it."""

    @property
    def strategies(self) -> Mapping[str, StrategyStateRecord]: ...

    @property
    def groups(self) -> Mapping[str, OrderGroupRecord]: ...

    @property
    def positions(self) -> Mapping[str, PositionRecord]: ...

    @property
    def risk(self) -> Optional[RiskRecord]: ...

    @property
    def risk_days(self) -> Mapping[str, RiskDaysRecord]: ...

    @property
    def audit(self) -> Optional[AuditRecord]: ...

    @property
    def lost(self) -> Sequence[str]: ...

    @property
    def stale(self) -> Sequence[str]: ...


class EngineStore(Protocol):
    """persistence.store.StateStore, as far as the engine uses it."""

    flush_failed: bool  # the last flush could not confirm its writes on disk

    def load_all(self) -> LoadedState: ...

    def put(self, record: Record, immediate: bool = True) -> bool: ...

    def save_dirty(self) -> int: ...

    def flush(self) -> bool: ...

    def audit(self, kind: str, message: str, ref: str = "") -> None: ...

    def retire(self, *record_names: str) -> bool:
        """Move finished group/position records to the archive (and their keys away once that is durable)."""
        ...


class RiskLike(Protocol):
    """engine.risk.RiskManager, as far as the engine uses it."""

    @property
    def record(self) -> RiskRecord: ...

    def update_equity(self, equity: float, now: datetime) -> bool: ...

    def end_of_day(self, day: date, equity: float) -> Optional[DrawdownPoint]: ...

    def on_position_closed(self, position: PositionRecord, now: datetime) -> bool: ...

    def entries_allowed(self, vix: Optional[float], strategy_id: str = "") -> bool: ...

    def size_factor(self, strategy_id: str = "") -> float: ...

    def close_all_required(self) -> bool: ...

    def max_bp_fraction(self, vix: Optional[float]) -> float: ...

    def update_correlation(self, open_positions: Sequence[PositionRecord], now: datetime) -> bool: ...

    def kill_switch_status(self) -> str:
        """ "" unless the kill switch is tripped; then when, why and how a person resets it."""
        ...


@dataclass(frozen=True)
class EngineSnapshot:
    """A read-only copy of what the engine holds (for the demo, the crash drill and tests). `groups` and
    `positions` include the finished ones this run already retired to the archive (CLOSED / done)."""

    strategies: Mapping[str, StrategyStateRecord]
    groups: Mapping[str, OrderGroupRecord]
    positions: Mapping[str, PositionRecord]
    risk: Optional[RiskRecord]
    daily_drawdowns: Tuple[DrawdownPoint, ...]  # end-of-day points of the last 12 months, oldest first
    drawdown: float  # live: below the peak at the last market view's equity (0 before the first); never stored
    started: bool  # start() ran
    trading: bool  # on_warmup_finished() ran: orders may be placed

    def open_positions(self, strategy_id: Optional[str] = None) -> Tuple[PositionRecord, ...]:
        return tuple(
            p
            for _, p in sorted(self.positions.items())
            if p.status is not PositionStatus.CLOSED and (strategy_id is None or p.strategy_id == strategy_id)
        )


__all__ = [
    "EXIT_COMBO_ATTEMPTS",
    "MAX_EXIT_ATTEMPTS",
    "MAX_RECOVERY_ATTEMPTS",
    "UNFILLED_ORDER_TIMEOUT",
    "EngineSnapshot",
    "EngineStore",
    "LoadedState",
    "RiskLike",
]
