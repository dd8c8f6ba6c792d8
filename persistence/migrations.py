"""Upgrade steps for stored bodies: one function per (schema, version) that returns the version+1 body.

The loader calls `upgrade` on every body before decoding it. A body from an older version is carried step by
step to the current one (schemas.CURRENT_VERSION); a newer version than this code knows, or an unknown schema,
raises MigrationError and the loader quarantines the value (loading goes on). Steps are pure functions of the
body dict: they never look at other records. The upgraded body is not written back by the loader; the next
save of that record writes the current version.

When a record type changes: bump CURRENT_VERSION, add the step here, add a test with a body of the old
version. Note that the archive embeds position and order_group bodies, so bumping those also needs an
`archive` step that upgrades its embedded items.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from persistence.schemas import CURRENT_VERSION

Body = Dict[str, Any]


class MigrationError(ValueError):
    """A body that cannot be brought to the current version."""


def _strategy_state_v1_to_v2(body: Body) -> Body:
    # v1 stored the moment of the last entry (`last_entry`, ISO datetime); the rule only ever needed the day
    upgraded = dict(body)
    last_entry = upgraded.pop("last_entry", None)
    if "last_entry_day" not in upgraded:
        upgraded["last_entry_day"] = last_entry[:10] if isinstance(last_entry, str) else None
    return upgraded


def _position_v1_to_v2(body: Body) -> Body:
    # v1 had no params_hash: the parameters the position was opened under are unknown ("")
    upgraded = dict(body)
    upgraded.setdefault("params_hash", "")
    note = upgraded.get("note") or ""
    upgraded["note"] = (note + "; " if note else "") + "migrated from position v1 (params unknown)"
    return upgraded


STEPS: Dict[Tuple[str, int], Callable[[Body], Body]] = {
    ("strategy_state", 1): _strategy_state_v1_to_v2,
    ("position", 1): _position_v1_to_v2,
}


def upgrade(schema: str, version: int, body: Body) -> Tuple[Body, bool]:
    """(body at the current version, whether any step ran)."""
    current = CURRENT_VERSION.get(schema)
    if current is None:
        raise MigrationError(f"unknown schema {schema!r}")
    if version > current:
        raise MigrationError(f"{schema} version {version} is newer than this code knows (v{current})")
    migrated = False
    while version < current:
        step = STEPS.get((schema, version))
        if step is None:
            raise MigrationError(f"no upgrade step for {schema} v{version} -> v{version + 1}")
        body = step(body)
        version += 1
        migrated = True
    return body, migrated


__all__ = ["STEPS", "MigrationError", "upgrade"]
