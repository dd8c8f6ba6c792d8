"""Semantic validation: a record that decodes (every field has the right type) can still be impossible.

The checksum is not keyed, so a bug, a fork or a hand edit in research can store a record that is well formed
and wrong: a leg filled +5 of an order for -2, an exit group with 1,000,000 contracts pending. Such a record
must never reach the code that sizes orders from it. The loader runs `RecordCheck` on every decoded record
(after the upgrade steps); a record that fails is quarantined like a damaged one, and what it described at
the broker is then decided by the broker's holdings (recovery reconciles positions with holdings).

Checks (each one a fact the template's own code never breaks):
- order legs: quantity not 0 and within `RecordLimits.max_leg_contracts` (a leg of shares an exercise delivered:
  x100, and no strike); the filled quantity has the sign
  of the order and is not larger; the average fill price is not negative; a strike is positive; order ids
  and fill keys unique within the group; one leg per contract; a group is not its own parent;
- positions: contract quantities not 0 and within the limit, one line per contract, positive strikes,
  a non-negative maximum loss;
- risk: peak equity and daily loss not negative, drawdown a fraction in [0, 1], a loss streak not negative,
  applied position ids unique, one drawdown point per day in day order;
- archive: the groups and positions it embeds pass the same checks.
Time order is not checked: a backtest resumed from a later run (`resume-run`) legitimately writes earlier
simulated times after later ones.
Each check is linear in the record's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any, Callable, Iterable, Optional

from core.contracts import SHARES_PER_CONTRACT
from core.records import LegRecord, OrderGroupRecord, PositionRecord, RiskDaysRecord, RiskRecord
from persistence.archive import ArchiveRecord

RecordCheck = Callable[[Any], Optional[str]]

DEFAULT_MAX_LEG_CONTRACTS = 1_000  # without a strategy config (research, bare store): still no absurd sizes


@dataclass(frozen=True)
class RecordLimits:
    """What the running strategies could ever have sent; main.py derives it from the strategy config."""

    max_leg_contracts: int = DEFAULT_MAX_LEG_CONTRACTS


def record_check(limits: RecordLimits) -> RecordCheck:
    """The check for `limits`: a function of a decoded record giving the first problem found, or None."""

    def check(record: Any) -> Optional[str]:
        if isinstance(record, OrderGroupRecord):
            return _group_problem(record, limits)
        if isinstance(record, PositionRecord):
            return _position_problem(record, limits)
        if isinstance(record, RiskRecord):
            return _risk_problem(record)
        if isinstance(record, RiskDaysRecord):
            return _risk_days_problem(record)
        if isinstance(record, ArchiveRecord):
            return _first(
                [*(_group_problem(g, limits) for g in record.groups)]
                + [_position_problem(p, limits) for p in record.positions]
            )
        return None

    return check


check_record = record_check(RecordLimits())


def _first(problems: Iterable[Optional[str]]) -> Optional[str]:
    return next((problem for problem in problems if problem is not None), None)


def _duplicate(items: Iterable[Any]) -> Optional[Any]:
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _is_share_leg(symbol: str) -> bool:
    """Shares of the underlying are keyed by the plain ticker (core.contracts.is_share_key): no "-"."""
    return bool(symbol) and "-" not in symbol


def _leg_problem(leg: LegRecord, limits: RecordLimits) -> Optional[str]:
    problem = _leg_fault(leg, limits)
    return None if problem is None else f"leg {leg.symbol!r}: {problem}"


def _leg_fault(leg: LegRecord, limits: RecordLimits) -> Optional[str]:
    shares = _is_share_leg(leg.symbol)
    limit = limits.max_leg_contracts * (SHARES_PER_CONTRACT if shares else 1)
    if leg.quantity == 0 or abs(leg.quantity) > limit:
        return f"quantity {leg.quantity} is 0 or beyond {limit} {'shares' if shares else 'contracts'}"
    filled = leg.filled_quantity
    if filled != 0 and ((filled > 0) != (leg.quantity > 0) or abs(filled) > abs(leg.quantity)):
        return f"filled {filled:+d} does not fit the order of {leg.quantity:+d}"
    if leg.avg_fill_price < 0:
        return f"negative average fill price {leg.avg_fill_price}"
    if leg.strike <= 0 and not shares:
        return f"strike {leg.strike} is not positive"
    return None


def _group_problem(group: OrderGroupRecord, limits: RecordLimits) -> Optional[str]:
    legs = group.legs
    contracts = limits.max_leg_contracts
    for leg in legs:
        quantity, filled = leg.quantity, leg.filled_quantity
        if (
            0 < abs(quantity) <= contracts
            and (filled == 0 or ((filled > 0) == (quantity > 0) and abs(filled) <= abs(quantity)))
            and leg.avg_fill_price >= 0
            and leg.strike > 0
        ):
            continue  # fits even an option leg's stricter bounds: _leg_fault would find nothing (start-up speed)
        problem = _leg_problem(leg, limits)
        if problem is not None:
            return f"group {group.group_id}: {problem}"
    # duplicates: one set per kind (the common case, none, costs a set build; the error path finds which)
    if len({leg.symbol for leg in legs}) != len(legs):
        return f"group {group.group_id}: two legs for {_duplicate(leg.symbol for leg in legs)!r}"
    order_ids = [order_id for leg in legs for order_id in leg.order_ids]
    if len(set(order_ids)) != len(order_ids):
        return f"group {group.group_id}: order id {_duplicate(order_ids)} appears twice"
    fill_keys = [key for leg in legs for key in leg.fill_keys]
    if len(set(fill_keys)) != len(fill_keys):
        return f"group {group.group_id}: fill {_duplicate(fill_keys)!r} booked twice"
    if group.parent_group_id == group.group_id:
        return f"group {group.group_id} names itself as its parent"
    return None


def _position_problem(position: PositionRecord, limits: RecordLimits) -> Optional[str]:
    problem = _position_fault(position, limits)
    return None if problem is None else f"position {position.position_id}: {problem}"


def _position_fault(position: PositionRecord, limits: RecordLimits) -> Optional[str]:
    contracts = limits.max_leg_contracts
    for contract in position.contracts:
        if 0 < abs(contract.quantity) <= contracts and contract.strike > 0:
            continue  # fits even an option's stricter bounds (start-up speed: the checks below find nothing)
        shares = _is_share_leg(contract.symbol)
        limit = limits.max_leg_contracts * (SHARES_PER_CONTRACT if shares else 1)
        if contract.quantity == 0 or abs(contract.quantity) > limit:
            return f"{contract.symbol!r} quantity {contract.quantity} is 0 or beyond the limit"
        if contract.strike <= 0 and not shares:
            return f"{contract.symbol!r} strike {contract.strike} is not positive"
    symbols = [contract.symbol for contract in position.contracts]
    if len(set(symbols)) != len(symbols):
        return f"{_duplicate(symbols)!r} listed twice"
    if position.max_loss < 0:
        return f"negative maximum loss {position.max_loss}"
    return None


def _risk_problem(risk: RiskRecord) -> Optional[str]:
    if risk.peak_equity < 0 or risk.daily_loss < 0 or risk.consecutive_losses < 0 or risk.correlation_score < 0:
        return "peak equity, daily loss, loss streak and correlation score cannot be negative"
    duplicate = _duplicate(risk.applied_position_ids)
    if duplicate is not None:
        return f"closed position {duplicate!r} folded in twice"
    return None


def _risk_days_problem(chunk: RiskDaysRecord) -> Optional[str]:
    """A chunk of daily drawdown points names a real month ("2024-03") and holds one point per day of it, in order."""
    try:
        first = date.fromisoformat(chunk.month + "-01") if len(chunk.month) == 7 else None
    except ValueError:
        first = None
    if first is None:
        return f"drawdown chunk month {chunk.month!r} is not a YYYY-MM month"
    days = [point.day for point in chunk.points]
    if any((day.year, day.month) != (first.year, first.month) for day in days):
        return f"drawdown chunk {chunk.month} holds points of another month"
    if any(later <= earlier for earlier, later in pairwise(days)):
        return "daily drawdown points are not one per day in day order"
    if any(not 0.0 <= point.drawdown <= 1.0 for point in chunk.points):
        return "a daily drawdown is not a fraction between 0 and 1"
    return None


__all__ = ["DEFAULT_MAX_LEG_CONTRACTS", "RecordCheck", "RecordLimits", "check_record", "record_check"]
