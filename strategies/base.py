"""What every strategy's rules provide to the engine, and the mark-to-market helpers they share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Optional, Protocol, Sequence, Tuple

from core.ports import LegSpec, MarketView, OptionQuote
from core.records import PositionRecord, StrategyStateRecord

OPTION_MULTIPLIER = 100  # shares per contract for SPY and SPX/SPXW options
REGULAR_CLOSE = time(16, 0)  # the US equity/index options regular session's close; params' clock times assume it


@dataclass(frozen=True)
class EntryPlan:
    strategy_id: str
    legs: Tuple[LegSpec, ...]  # TOTAL signed quantity per leg (= per-unit quantity x units)
    units: int
    est_net_price: float  # per unit from mids; negative = credit
    profit_target: float  # account currency, whole position, positive
    max_loss: float  # account currency, whole position, positive (the stop)
    expiry: date  # nearest expiry among the legs
    strikes: Tuple[float, ...]
    reason: str
    # the credit (at mid, whole position, positive) the targets were computed from, the contracts it comes from,
    # and an absolute cap of the stop: stored with the entry so the targets follow the credit actually received
    credit: Optional[float] = None
    credit_symbols: Tuple[str, ...] = ()
    stop_cap: Optional[float] = None


class StrategyRules(Protocol):
    strategy_id: str
    enabled: bool

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        """None unless this is an entry moment and the chain gives the structure."""
        ...

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        """Why the position must be closed now, or None."""
        ...


def position_value(view: MarketView, position: PositionRecord) -> Optional[float]:
    """Mark-to-market of the held contracts from quote mids (negative when short premium dominates);
    None when any contract has no usable quote."""
    total = 0.0
    for contract in position.contracts:
        quote = view.quote(contract.symbol)
        if quote is None or not usable(quote):
            return None
        total += contract.quantity * quote.mid * OPTION_MULTIPLIER
    return total


def usable(quote: OptionQuote) -> bool:
    # a zero or crossed ask means no market for the contract right now, so its mid is not a price
    return quote.ask > 0 and quote.bid >= 0 and quote.ask >= quote.bid


def position_units(position: PositionRecord) -> int:
    """Units of the structure: the gcd of the contract quantities (1-1-2 x3 -> 3)."""
    units = 0
    for contract in position.contracts:
        units = math.gcd(units, abs(contract.quantity))
    return units


def position_pnl(view: MarketView, position: PositionRecord) -> Optional[float]:
    """Unrealised P&L in account currency: value now minus the net price paid at entry."""
    value = position_value(view, position)
    if value is None:
        return None
    return value - position.entry_price * position_units(position) * OPTION_MULTIPLIER


def legs_total(per_unit: Sequence[Tuple[OptionQuote, int]], units: int) -> Tuple[LegSpec, ...]:
    """LegSpecs with the total signed quantity of each leg."""
    return tuple(
        LegSpec(quote.symbol, quote.underlying, quote.right, quote.strike, quote.expiry, quantity * units)
        for quote, quantity in per_unit
    )


def before_close(view: MarketView, regular: time) -> datetime:
    """A rule's clock time measured from the session's actual close: `regular` is written for a 16:00 close,
    so on a 13:00 early close 15:00 ("an hour before the close") becomes 12:00. Without a known close (None)
    the regular clock time stands."""
    today = view.now.date()
    close = view.session_close
    if close is None or close.date() != today:
        return datetime.combine(today, regular)
    return close - (datetime.combine(today, REGULAR_CLOSE) - datetime.combine(today, regular))


def in_window(now: datetime, start: time, minutes: int) -> bool:
    """start <= now's time < start + minutes (same day)."""
    begin = datetime.combine(now.date(), start)
    return begin <= now < begin + timedelta(minutes=minutes)


def units_for(equity: float, bp_fraction: float, size_factor: float, margin_per_unit: float, cap: int) -> int:
    """Whole units that fit in equity x BP fraction x size factor at `margin_per_unit`, at most `cap`."""
    if margin_per_unit <= 0 or size_factor <= 0 or equity <= 0:
        return 0
    return max(0, min(cap, math.floor(equity * bp_fraction * size_factor / margin_per_unit)))
