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

import re
from typing import Any, Callable, Dict, Optional, Tuple

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


# order_group v1 kept an ENTRY's plan facts in its decision text, e.g. "[plan target=150.0 max_loss=300.0 vix=15.0]"
# ("vix=none" without VIX data); every later decision text carried the note along. The pattern starts at the
# note's literal "[" and the leading whitespace is cut with rstrip: a leading \s* searched from every position
# is quadratic in a run of spaces (40,000 spaces took 2 s), and the load path must stay linear.
_V1_PLAN_NOTE = re.compile(r"\[plan target=([-0-9.eE+]++) max_loss=([-0-9.eE+]++) vix=([-0-9.eE+]++|none)\]")


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _find_plan_note(text: str) -> Optional[Tuple[re.Match[str], int]]:
    """The first well-formed plan note and where it starts with its leading whitespace. Linear: the pattern
    opens with literal text and its number runs are possessive, so each start position costs a bounded
    prefix compare plus one run that ends at a character no later attempt starts inside."""
    match = _V1_PLAN_NOTE.search(text)
    if match is None:
        return None
    return match, len(text[: match.start()].rstrip())


def _order_group_v1_to_v2(body: Body) -> Body:
    # the plan facts become fields, read from the v1 note when there is one (else None); the note leaves the
    # decision text, so each fact has one home
    upgraded = dict(body)
    decision = upgraded.get("decision")
    text = decision if isinstance(decision, str) else ""
    found = _find_plan_note(text)
    target = max_loss = vix = None
    if found is not None:
        match, note_start = found
        target, max_loss = _number(match.group(1)), _number(match.group(2))
        vix = None if match.group(3) == "none" else _number(match.group(3))
        rest = (text[:note_start] + text[match.end() :]).strip()
        upgraded["decision"] = rest or None
    upgraded.setdefault("profit_target", target)
    upgraded.setdefault("max_loss", max_loss)
    upgraded.setdefault("entry_vix", vix)
    return upgraded


def _upgrade_embedded(upgraded: Body, field: str, step: Callable[[Body], Body]) -> None:
    """Apply a record's upgrade step to every body the archive embeds under `field` (anything that is not a
    body is left as it is, for the codec to refuse)."""
    items = upgraded.get(field)
    if isinstance(items, list):
        upgraded[field] = [step(item) if isinstance(item, dict) else item for item in items]


def _archive_v1_to_v2(body: Body) -> Body:
    # the archive embeds order group bodies: they take the same step
    upgraded = dict(body)
    _upgrade_embedded(upgraded, "groups", _order_group_v1_to_v2)
    return upgraded


def _position_v2_to_v3(body: Body) -> Body:
    # v3 adds `attention` (why a person must look at the position); nothing needed attention before
    upgraded = dict(body)
    upgraded.setdefault("attention", "")
    return upgraded


def _archive_v2_to_v3(body: Body) -> Body:
    # the archive embeds position bodies: they take the same step
    upgraded = dict(body)
    _upgrade_embedded(upgraded, "positions", _position_v2_to_v3)
    return upgraded


def _order_group_v2_to_v3(body: Body) -> Body:
    # v3 adds the credit the targets came from; an older entry's is unknown (its targets stay as planned)
    upgraded = dict(body)
    upgraded.setdefault("credit", None)
    upgraded.setdefault("credit_symbols", [])
    upgraded.setdefault("stop_cap", None)
    return upgraded


def _position_v3_to_v4(body: Body) -> Body:
    # v4 adds the credit received; an older position's is unknown (None)
    upgraded = dict(body)
    upgraded.setdefault("credit_received", None)
    return upgraded


def _archive_v3_to_v4(body: Body) -> Body:
    # the archive embeds group and position bodies: they take the same steps
    upgraded = dict(body)
    _upgrade_embedded(upgraded, "groups", _order_group_v2_to_v3)
    _upgrade_embedded(upgraded, "positions", _position_v3_to_v4)
    return upgraded


def _with_no_facts(body: Body) -> Body:
    # order_group v4 / position v5 add the strategy's own facts; a record from before had none stored
    upgraded = dict(body)
    upgraded.setdefault("facts", [])
    return upgraded


def _archive_v4_to_v5(body: Body) -> Body:
    # the archive embeds group and position bodies: they take the same step
    upgraded = dict(body)
    _upgrade_embedded(upgraded, "groups", _with_no_facts)
    _upgrade_embedded(upgraded, "positions", _with_no_facts)
    return upgraded


def _risk_v1_to_v2(body: Body) -> Body:
    # v1 kept one streak and daily loss for all strategies together; which strategy lost is not in it, so each
    # strategy starts v2 with no losses of its own (the shared figures stay as they were)
    upgraded = dict(body)
    upgraded.setdefault("strategy_losses", [])
    return upgraded


def _risk_v3_to_v4(body: Body) -> Body:
    # v4 adds the never-lowered high-water mark; the best known value of an older record is its peak
    upgraded = dict(body)
    peak = upgraded.get("peak_equity")
    upgraded.setdefault(
        "high_water_mark", peak if isinstance(peak, (int, float)) and not isinstance(peak, bool) else 0.0
    )
    return upgraded


def _risk_v4_to_v5(body: Body) -> Body:
    # v5 adds the kill switch; no older record can have tripped it
    upgraded = dict(body)
    upgraded.setdefault("kill_switch_since", None)
    upgraded.setdefault("kill_switch_reason", "")
    upgraded.setdefault("kill_switch_token", "")
    return upgraded


def _risk_v2_to_v3(body: Body) -> Body:
    # v3 keeps only the facts the breakers decide from, so the record stays small enough to write on every
    # change: `drawdown` was a live value (it follows from the peak and the broker's equity and is recomputed
    # on the first bar), `daily_drawdowns` were research figures that now live in monthly risk_days chunks.
    # A step sees one body and cannot write other records, so v2's daily points are not carried over; the
    # loader logs the migration.
    upgraded = dict(body)
    upgraded.pop("drawdown", None)
    upgraded.pop("daily_drawdowns", None)
    return upgraded


STEPS: Dict[Tuple[str, int], Callable[[Body], Body]] = {
    ("risk", 1): _risk_v1_to_v2,
    ("risk", 2): _risk_v2_to_v3,
    ("risk", 3): _risk_v3_to_v4,
    ("risk", 4): _risk_v4_to_v5,
    ("strategy_state", 1): _strategy_state_v1_to_v2,
    ("position", 1): _position_v1_to_v2,
    ("order_group", 1): _order_group_v1_to_v2,
    ("archive", 1): _archive_v1_to_v2,
    ("position", 2): _position_v2_to_v3,
    ("archive", 2): _archive_v2_to_v3,
    ("order_group", 2): _order_group_v2_to_v3,
    ("position", 3): _position_v3_to_v4,
    ("archive", 3): _archive_v3_to_v4,
    ("order_group", 3): _with_no_facts,
    ("position", 4): _with_no_facts,
    ("archive", 4): _archive_v4_to_v5,
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
