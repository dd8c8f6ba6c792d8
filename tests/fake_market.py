"""A MarketView made of plain values, for the strategy rule tests (LT112 and 0DTE share it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Dict, Optional, Sequence

from core.params import Params, rules_hash
from core.ports import OptionQuote
from core.records import ContractRecord, PositionRecord, StrategyState, StrategyStateRecord
from engine.facts import PlanFacts, facts_of, targets_from_fill
from strategies.base import EntryPlan

SPOT = 470.0  # the synthetic SPY level the rule tests build their chains around


@dataclass
class FakeView:
    now: datetime
    quotes: Sequence[OptionQuote] = ()
    price: Optional[float] = SPOT
    open_price: Optional[float] = SPOT
    vix: Optional[float] = 15.0
    equity: float = 250_000.0
    underlying: str = "SPY"
    market_open: bool = True
    session_close: Optional[datetime] = None
    overrides: Dict[str, OptionQuote] = field(default_factory=dict)

    def chain(self) -> Sequence[OptionQuote]:
        return list(self.quotes)

    def quote(self, symbol: str) -> Optional[OptionQuote]:
        if symbol in self.overrides:
            return self.overrides[symbol]
        return next((q for q in self.quotes if q.symbol == symbol), None)


def waiting(strategy_id: str, last_entry_day: Optional[date] = None) -> StrategyStateRecord:
    """A strategy flat and looking for an entry (the only state the engine asks rules for an entry in)."""
    return StrategyStateRecord(
        strategy_id, StrategyState.WAITING, None, datetime(2024, 1, 1), "t", last_entry_day=last_entry_day
    )


def position_from_plan(plan: EntryPlan, position_id: str, entry_time: datetime) -> PositionRecord:
    """The position the engine would book if the plan filled at its estimated price (mid)."""
    facts = PlanFacts(plan.profit_target, plan.max_loss, 15.0, plan.credit, plan.credit_symbols, plan.stop_cap)
    target, stop = targets_from_fill(facts, plan.credit)
    return PositionRecord(
        position_id=position_id,
        strategy_id=plan.strategy_id,
        entry_group_id=f"{position_id}-entry",
        entry_time=entry_time,
        entry_price=plan.est_net_price,
        contracts=tuple(ContractRecord(g.symbol, g.right, g.strike, g.expiry, g.quantity) for g in plan.legs),
        expiry=plan.expiry,
        strikes=plan.strikes,
        entry_vix=15.0,
        profit_target=target,
        max_loss=stop,
        params_hash=rules_hash([Params()]),
        credit_received=plan.credit,
        facts=facts_of(plan.facts),
    )
