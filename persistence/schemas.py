"""The stored schemas: name, record type, current version, and which record names belong to which schema.

The loader dispatches on the envelope's schema and checks it against the key: a `group-...` key must hold an
`order_group`, and the record inside must name itself the same way; anything else is foreign and quarantined.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from core.records import (
    SCHEMA_OF,
    AuditRecord,
    OrderGroupRecord,
    PositionRecord,
    RiskDaysRecord,
    RiskRecord,
    StrategyStateRecord,
)
from persistence.archive import ArchiveRecord

# schema name -> record type
SCHEMA_TYPES: Dict[str, type] = {name: cls for cls, name in SCHEMA_OF.items()}
SCHEMA_TYPES["archive"] = ArchiveRecord
SCHEMA_BY_TYPE: Dict[type, str] = {cls: name for name, cls in SCHEMA_TYPES.items()}

# the version this code writes; migrations.py upgrades anything older, anything newer is quarantined
CURRENT_VERSION: Dict[str, int] = {
    "strategy_state": 2,  # v2: last_entry (datetime) became last_entry_day (date)
    "order_group": 4,  # v2: profit_target, max_loss, entry_vix (were a "[plan ...]" note in the decision text);
    # v3: credit, credit_symbols, stop_cap (targets re-based on the credit received); v4: facts (the strategy's own)
    "position": 5,  # v2: params_hash added; v3: attention (needs-attention reason) added; v4: credit_received;
    # v5: facts (the owning strategy's own per-position facts)
    "risk": 5,  # v2: strategy_losses (each strategy's own streak and daily loss); v3: no drawdown (a live value),
    # no daily_drawdowns (moved to risk_days chunks); v4: high_water_mark (never lowered); v5: kill switch
    "risk_days": 1,
    "audit": 1,
    "archive": 5,  # v2: embedded order_group v2; v3: position v3; v4: order_group v3 and position v4;
    # v5: order_group v4 and position v5
}

MANIFEST_SCHEMA = "manifest"
MANIFEST_VERSION = 1

_BY_PREFIX = (
    ("strategy-", StrategyStateRecord),
    ("group-", OrderGroupRecord),
    ("position-", PositionRecord),
    ("risk-days-", RiskDaysRecord),
)
_BY_NAME = {"risk": RiskRecord, "audit": AuditRecord, "archive": ArchiveRecord}

# records the engine may retire into the archive (finished cycles); the others live for the whole run
RETIRABLE_SCHEMAS = frozenset({"order_group", "position"})


def schema_for_name(record_name: str) -> Optional[str]:
    """The schema a record of this storage name must have, or None when the name is not one of ours."""
    cls = _BY_NAME.get(record_name)
    if cls is None:
        for prefix, prefixed in _BY_PREFIX:
            if record_name.startswith(prefix) and len(record_name) > len(prefix):
                cls = prefixed
                break
    return SCHEMA_BY_TYPE[cls] if cls is not None else None


def schema_of(record: Any) -> str:
    schema = SCHEMA_BY_TYPE.get(type(record))
    if schema is None:
        raise TypeError(f"{type(record).__name__} is not a stored record type")
    return schema


__all__ = [
    "CURRENT_VERSION",
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "RETIRABLE_SCHEMAS",
    "SCHEMA_BY_TYPE",
    "SCHEMA_TYPES",
    "schema_for_name",
    "schema_of",
]
