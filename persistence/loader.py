"""Reading a namespace back: pick the newest valid slot of every record, check it against the manifest,
quarantine whatever is not valid state, and never raise.

What counts as bad (each one is copied to a quarantine key, logged with the key and the reason, listed in
`LoadResult.quarantined`; loading goes on with the other slot and the other records):
- empty, truncated or non-JSON text; JSON that is not an envelope; a bad checksum;
- a schema version newer than this code, or one with no upgrade step;
- a schema that does not match the key (`group-x` holding a `position`), a record naming itself differently
  from its key, an unknown or derived (forbidden) field, a missing field, a wrong type;
- any key under our namespace that this template does not write (foreign keys).
The original is never deleted: the next save to that slot overwrites it, which is fine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from persistence.archive import ArchiveRecord
from persistence.codec import RecordError, from_body
from persistence.envelope import EnvelopeError, open_envelope
from persistence.keys import Namespace, is_quarantine_key, parse_manifest_key, parse_record_key
from persistence.migrations import MigrationError, upgrade
from persistence.ports import LogPort, ObjectStorePort
from persistence.records import (
    AuditRecord,
    OrderGroupRecord,
    PositionRecord,
    Record,
    RiskRecord,
    StrategyStateRecord,
)
from persistence.schemas import MANIFEST_SCHEMA, MANIFEST_VERSION, SCHEMA_TYPES, schema_for_name

StoredRecord = Union[Record, ArchiveRecord]


@dataclass(frozen=True)
class QuarantineEntry:
    key: str  # the bad original (left in place)
    quarantine_key: Optional[str]  # where the copy is; None when it could not be written
    reason: str


@dataclass
class LoadResult:
    """What `StateStore.load_all` found. Records are keyed by their own id (strategy_id, group_id, position_id)."""

    strategies: Dict[str, StrategyStateRecord] = field(default_factory=dict)
    groups: Dict[str, OrderGroupRecord] = field(default_factory=dict)
    positions: Dict[str, PositionRecord] = field(default_factory=dict)
    risk: Optional[RiskRecord] = None
    audit: Optional[AuditRecord] = None
    quarantined: List[QuarantineEntry] = field(default_factory=list)
    lost: List[str] = field(default_factory=list)  # record names the manifest lists but no valid slot holds
    stale: List[str] = field(default_factory=list)  # loaded an older seq than the manifest lists
    # additions beyond the shared contract
    archive: Optional[ArchiveRecord] = None
    archived_positions: Dict[str, PositionRecord] = field(default_factory=dict)  # by position_id (research)
    archived_groups: Dict[str, OrderGroupRecord] = field(default_factory=dict)  # by group_id (research)
    migrated: List[str] = field(default_factory=list)  # record names loaded through an upgrade step
    seqs: Dict[str, int] = field(default_factory=dict)  # record name -> seq of the loaded version
    retired_leftovers: List[str] = field(default_factory=list)  # slot keys of archived records, deleted


@dataclass
class SlotState:
    """Where a record's newest version was written, and what is known about it reaching disk."""

    slot: str
    seq: int
    written_at: float  # wall clock of that write (-inf: read back from disk)
    durable_seq: int  # highest seq known to be on disk (a flush returned True after it)


@dataclass
class LoadOutcome:
    result: LoadResult
    records: Dict[str, StoredRecord]  # live records by record name
    slots: Dict[str, SlotState]
    seq_floor: Dict[str, int]  # never reuse a seq at or below this (slots, manifest, archive)
    manifest: Dict[str, int]
    manifest_slot: Optional[SlotState]
    leftover_keys: List[str]


_Candidate = Tuple[int, str, Any, bool]  # seq, slot, record (or manifest dict), migrated


def load_namespace(port: ObjectStorePort, namespace: Namespace, log: LogPort) -> LoadOutcome:
    result = LoadResult()
    outcome = LoadOutcome(result, {}, {}, {}, {}, None, [])
    try:
        keys = [key for key in port.keys() if namespace.owns(key)]
    except Exception as error:  # a failing store must not stop the algorithm; it starts with nothing
        log.error(f"STATE LOAD FAILED: cannot list ObjectStore keys ({error!r}); starting with no saved state")
        return outcome

    def quarantine(key: str, text: Optional[str], reason: str) -> None:
        result.quarantined.append(_quarantine(port, namespace, log, (key, text, reason)))

    record_slots: Dict[str, Dict[str, str]] = {}
    manifest_slots: Dict[str, str] = {}
    for key in sorted(keys):
        relative = namespace.relative(key) or ""
        if is_quarantine_key(relative):
            continue
        manifest_slot = parse_manifest_key(relative)
        parsed = parse_record_key(relative)
        if manifest_slot is not None:
            manifest_slots[manifest_slot] = key
        elif parsed is not None and schema_for_name(parsed[0]) is not None:
            record_slots.setdefault(parsed[0], {})[parsed[1]] = key
        else:
            quarantine(key, _read_or_none(port, key), "foreign key under our namespace (not written by this template)")

    manifest_candidates = [
        candidate
        for slot, key in manifest_slots.items()
        if (candidate := _read_slot(port, key, slot, (MANIFEST_SCHEMA, None), quarantine)) is not None
    ]
    if manifest_candidates:
        seq, slot, manifest, _ = max(manifest_candidates, key=lambda candidate: candidate[0])
        outcome.manifest = manifest
        outcome.manifest_slot = SlotState(slot, seq, float("-inf"), seq)

    for name, slots in record_slots.items():
        schema = schema_for_name(name) or ""
        candidates = [
            candidate
            for slot, key in slots.items()
            if (candidate := _read_slot(port, key, slot, (schema, name), quarantine)) is not None
        ]
        if not candidates:
            continue
        seq, slot, record, migrated = max(candidates, key=lambda candidate: candidate[0])
        outcome.records[name] = record
        outcome.slots[name] = SlotState(slot, seq, float("-inf"), seq)
        outcome.seq_floor[name] = seq
        if migrated:
            result.migrated.append(name)

    archive = outcome.records.get("archive")
    retired: Dict[str, int] = {}
    if isinstance(archive, ArchiveRecord):
        retired = {entry.record_name: entry.seq for entry in archive.retired}
        result.archive = archive
        result.archived_positions = {p.position_id: p for p in archive.positions}
        result.archived_groups = {g.group_id: g for g in archive.groups}
    for name, retired_seq in retired.items():
        outcome.seq_floor[name] = max(outcome.seq_floor.get(name, 0), retired_seq)
        if name in outcome.records and outcome.slots[name].seq <= retired_seq:
            # archived, but its slots were not deleted before the process ended: not live state
            del outcome.records[name]
            outcome.leftover_keys.extend(record_slots[name].values())

    for name, listed_seq in sorted(outcome.manifest.items()):
        outcome.seq_floor[name] = max(outcome.seq_floor.get(name, 0), listed_seq)
        if name in outcome.records:
            if outcome.slots[name].seq < listed_seq:
                result.stale.append(name)
        elif retired.get(name, -1) < listed_seq:
            result.lost.append(name)

    for name, record in outcome.records.items():
        result.seqs[name] = outcome.slots[name].seq
        _file_result(result, record)
    result.retired_leftovers = sorted(outcome.leftover_keys)
    return outcome


def _file_result(result: LoadResult, record: StoredRecord) -> None:
    if isinstance(record, StrategyStateRecord):
        result.strategies[record.strategy_id] = record
    elif isinstance(record, OrderGroupRecord):
        result.groups[record.group_id] = record
    elif isinstance(record, PositionRecord):
        result.positions[record.position_id] = record
    elif isinstance(record, RiskRecord):
        result.risk = record
    elif isinstance(record, AuditRecord):
        result.audit = record


def _read_or_none(port: ObjectStorePort, key: str) -> Optional[str]:
    try:
        return port.read(key)
    except Exception:
        return None


def _read_slot(
    port: ObjectStorePort,
    key: str,
    slot: str,
    expected: Tuple[str, Optional[str]],
    quarantine: Callable[[str, Optional[str], str], None],
) -> Optional[_Candidate]:
    """One slot as (seq, slot, record, migrated), or None after quarantining it. `expected` is (schema, record
    name); name None = the manifest."""
    schema, name = expected
    text = _read_or_none(port, key)
    if text is None:
        quarantine(key, None, "unreadable (read raised)")
        return None
    try:
        envelope = open_envelope(text)
        if envelope.schema != schema:
            raise RecordError(f"schema {envelope.schema!r} does not match the key (expects {schema!r})")
        if name is None:
            return envelope.seq, slot, _manifest_body(envelope.version, envelope.body), False
        body, migrated = upgrade(schema, envelope.version, envelope.body)
        record: Any = from_body(SCHEMA_TYPES[schema], body)
        if record.record_name != name:
            raise RecordError(f"the record names itself {record.record_name!r}, the key says {name!r}")
        return envelope.seq, slot, record, migrated
    except (EnvelopeError, MigrationError, RecordError) as error:
        quarantine(key, text, str(error))
        return None


def _manifest_body(version: int, body: Dict[str, Any]) -> Dict[str, int]:
    if version != MANIFEST_VERSION:
        raise MigrationError(f"manifest version {version} is not v{MANIFEST_VERSION}")
    records = body.get("records") if body.keys() == {"records"} else None
    if type(records) is not dict or not all(
        type(name) is str and type(seq) is int and seq >= 0 for name, seq in records.items()
    ):
        raise RecordError("manifest body must be {'records': {name: seq}}")
    return dict(records)


def _quarantine(
    port: ObjectStorePort, namespace: Namespace, log: LogPort, bad: Tuple[str, Optional[str], str]
) -> QuarantineEntry:
    """Copy the bad value (key, text or None when unreadable, reason) to a quarantine key, once per distinct
    content, and say so loudly."""
    key, text, reason = bad
    if text is None:
        log.error(f"QUARANTINE {key}: {reason}; the value could not be read, so no copy was made")
        return QuarantineEntry(key, None, reason)
    digest = hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:16]
    quarantine_key: Optional[str] = namespace.quarantine_key(key, digest)
    try:
        assert quarantine_key is not None
        if not port.contains_key(quarantine_key) and not port.save(quarantine_key, text):
            log.error(f"QUARANTINE {key}: could not write the copy to {quarantine_key} (store full or read-only)")
            quarantine_key = None
    except Exception as error:
        log.error(f"QUARANTINE {key}: copying to {quarantine_key} raised {error!r}")
        quarantine_key = None
    log.error(f"QUARANTINE {key} -> {quarantine_key}: {reason}; loading goes on without it")
    return QuarantineEntry(key, quarantine_key, reason)


__all__ = ["LoadOutcome", "LoadResult", "QuarantineEntry", "SlotState", "StoredRecord", "load_namespace"]
