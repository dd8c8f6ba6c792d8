"""What the strategies could ever have sent, for checking stored records (persistence.validation).

A stored leg or position larger than any order this configuration can place is not a fact of this template:
the loader quarantines it and the broker's holdings decide what is really held. The bound is each
strategy's own safety cap (`*_max_units`, the most units `base.units_for` ever returns, whatever the account
size) times its largest leg per unit.
"""

from __future__ import annotations

from core.params import Params
from persistence.validation import RecordLimits

LT112_MAX_CONTRACTS_PER_UNIT = 2  # the 1-1-2: two naked puts per unit (lt112.LT112.select)
ZERO_DTE_MAX_CONTRACTS_PER_UNIT = 1  # credit spreads and iron condors: one contract per leg per unit


def record_limits(params: Params) -> RecordLimits:
    """The largest leg (in contracts) any strategy of `params` could have ordered."""
    return RecordLimits(
        max_leg_contracts=max(
            params.lt112_max_units * LT112_MAX_CONTRACTS_PER_UNIT,
            params.zero_dte_max_units * ZERO_DTE_MAX_CONTRACTS_PER_UNIT,
        )
    )


__all__ = ["record_limits"]
