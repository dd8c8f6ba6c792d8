"""What the strategies could ever have sent, for checking stored records (persistence.validation).

A stored leg or position larger than any order this configuration can place is not a fact of this template:
the loader quarantines it and the broker's holdings decide what is really held. The bound is each strategy's
own `max_leg_contracts` (its safety cap of units, the most `base.units_for` ever returns whatever the account
size, times its largest leg per unit).
"""

from __future__ import annotations

from typing import Any, Sequence

from persistence.validation import RecordLimits
from strategies.base import Strategy


def record_limits(strategies: Sequence[Strategy[Any]]) -> RecordLimits:
    """The largest leg (in contracts) any of `strategies` could have ordered (at least 1)."""
    return RecordLimits(max_leg_contracts=max((s.max_leg_contracts() for s in strategies), default=1))


__all__ = ["record_limits"]
