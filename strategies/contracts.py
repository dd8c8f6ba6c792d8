"""Contract keys: one stable text id per option contract, independent of LEAN's Symbol objects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from persistence.records import Right


def strike_text(strike: float) -> str:
    # Decimal(str()) keeps 402.5 as "402.5" and 400.0 as "400", with no float noise
    return format(Decimal(str(strike)).normalize(), "f")


def contract_key(underlying: str, expiry: date, right: Right, strike: float) -> str:
    """E.g. SPY-20240119-P-402.5. The same contract always gets the same key across runs."""
    return f"{underlying}-{expiry:%Y%m%d}-{right.value}-{strike_text(strike)}"
