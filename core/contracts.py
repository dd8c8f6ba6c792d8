"""Contract keys: one stable text id per option contract, independent of LEAN's Symbol objects."""

from __future__ import annotations

import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Iterable, List, Optional, Tuple

from core.records import Right


def strike_text(strike: float) -> str:
    # Decimal(str()) keeps 402.5 as "402.5" and 400.0 as "400", with no float noise
    return format(Decimal(str(strike)).normalize(), "f")


def contract_key(underlying: str, expiry: date, right: Right, strike: float) -> str:
    """E.g. SPY-20240119-P-402.5. The same contract always gets the same key across runs."""
    return f"{underlying}-{expiry:%Y%m%d}-{right.value}-{strike_text(strike)}"


# Shares of the underlying (delivered by an exercise or assignment) are keyed by the plain ticker ("SPY").
# Records that carry them fill the option-only fields with these placeholders.
SHARE_RIGHT = Right.CALL
SHARE_STRIKE = 0.0
SHARE_EXPIRY = date.max
# A US equity or index option is on 100 of its underlying: its price x 100 is what it costs (LEAN:
# SymbolProperties.ContractMultiplier) and an exercise delivers 100 shares (Option.ContractUnitOfTrade).
OPTION_MULTIPLIER = 100
SHARES_PER_CONTRACT = OPTION_MULTIPLIER
# The US equity/index options regular session's close: rules' clock times assume it, and a contract expiring
# today is settled by the broker after it.
REGULAR_CLOSE = time(16, 0)


def is_share_key(key: str) -> bool:
    """A key of the underlying's shares (its ticker), not a contract key (contract keys contain "-")."""
    return bool(key) and "-" not in key


def parse_contract_key(key: str) -> Optional[Tuple[str, date, Right, float]]:
    """Inverse of contract_key ("SPY-20240119-P-402.5"); None if it is not one."""
    parts = key.rsplit("-", 3)
    if len(parts) != 4 or not parts[0]:
        return None
    underlying, day, right, strike = parts
    try:
        return underlying, datetime.strptime(day, "%Y%m%d").date(), Right(right), float(strike)
    except ValueError:
        return None


def combo_ratio(quantities: Iterable[int]) -> Tuple[List[int], int]:
    """(leg ratios with GCD 1, units) such that ratio x units == quantity for every leg: the form LEAN's combo
    orders take (Algorithm/QCAlgorithm.Trading.cs `CheckComboOrderSizing` refuses legs whose ratios share a factor)."""
    signed = [int(quantity) for quantity in quantities]
    units = 0
    for quantity in signed:
        units = math.gcd(units, quantity)
    units = max(units, 1)
    return [quantity // units for quantity in signed], units
