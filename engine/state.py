"""The engine's shared mutable state: one plain object every collaborator reads and writes.

The engine's parts (engine/ledger.py, order_desk.py, settlement.py, startup.py, exercise.py, trading_loop.py,
driven by engine/engine.py) each do one job and keep no copy of what is here: they read it from this object
every time. That matters because an order event can arrive re-entrantly inside a broker call: whatever the
event changed is in `groups` when the call returns, so a caller re-reads `groups[group_id]` after the call
instead of trusting a local taken before it. Whole maps may also be replaced (start-up loading, reconcile):
never keep a reference to `groups` or `positions` across a call to another part.

Invariants:
- `groups` and `positions` are what the engine works on, keyed by their own ids; every change goes through
  the ledger (engine/ledger.py `set_group` / `set_position`), which saves it, except where reconcile replaces
  both maps and saves the changed records itself;
- `retired_groups` / `retired_positions` are finished cycles this run archived: shown, never worked on
  (bounded by engine/ledger.py RETIRED_SHOWN);
- `risk` is None only before start-up restored it; `saved_risk` is the risk record last handed to the store;
- `risk_days`: the daily drawdown chunks by month ("2024-03"), the ring of 12 the store keeps;
- `now` only moves forward within a call: it is the algorithm's clock of the last market view or order event;
- `submitting` holds the groups whose submit call has not returned (events may come before it does);
- `trading` is set once holdings are real (after warm-up): orders may be placed only then.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Dict, Optional, Set

from core.order_groups import is_in_flight
from core.ports import MarketView
from core.records import OrderGroupRecord, PositionRecord, RiskDaysRecord, RiskRecord
from core.state_machine import StrategyMachine
from engine.protocols import RiskLike


class EngineState:
    def __init__(self) -> None:
        self.machines: Dict[str, StrategyMachine] = {}
        self.groups: Dict[str, OrderGroupRecord] = {}
        self.positions: Dict[str, PositionRecord] = {}
        # archived by final_save: no longer worked on, still shown by snapshot() (bounded, see engine/ledger.py)
        self.retired_groups: Dict[str, OrderGroupRecord] = {}
        self.retired_positions: Dict[str, PositionRecord] = {}
        self.risk: Optional[RiskLike] = None
        self.saved_risk: Optional[RiskRecord] = None
        # the daily drawdown chunks by month ("2024-03"): the ring of 12 the store keeps, so at most 12
        self.risk_days: Dict[str, RiskDaysRecord] = {}
        self.last_equity: Optional[float] = None  # from the last market view, for the end-of-day risk point
        self.now = datetime.min
        self.started_at: Optional[datetime] = None  # the algorithm's clock when this process started (run_id)
        self.market_open = False  # as of the last market view
        self.started = False
        self.trading = False  # after on_warmup_finished: orders may be placed
        self.submitting: Set[str] = set()  # groups whose submit call has not returned (events may come first)
        self.cancel_requested: Dict[str, datetime] = {}
        # positions that need attention -> the day of their last exit attempt (at most one a day, trading_loop)
        self.attention_exit_day: Dict[str, date] = {}
        self.last_refusal: Dict[str, str] = {}  # group id -> the broker's reason for its latest refused order
        self.reconcile_pending = False  # holdings may have moved without an event we could book
        self.view: Optional[MarketView] = None  # the last market view (quotes price fills learned from holdings)
        # positions whose close waits for an exit fill's price -> the first open-market moment it waited
        self.awaiting_price: Dict[str, datetime] = {}
        # orders held back until their contracts have a price (order_desk `quotes_missing`): key -> the first
        # open-market moment it waited (None while the market is closed)
        self.awaiting_quote: Dict[str, Optional[datetime]] = {}

    def taken_ids(self) -> set[str]:
        """Every group and position id in use: a new record id must be none of them."""
        return set(self.groups) | set(self.positions)

    def in_flight_for_position(self, position_id: str) -> bool:
        """Some group of the position is still moving (its orders may still fill)."""
        return any(g.position_id == position_id and is_in_flight(g) for g in self.groups.values())


__all__ = ["EngineState"]
