"""Reading a namespace back: pick the newest valid slot of every record, check it against the manifest,
quarantine whatever is not valid state, and never raise.

What counts as bad (each one is handed to quarantine.py, logged once with the key and the reason, listed in
`LoadResult.quarantined`; loading goes on with the other slot and the other records):
- a value that cannot be read, is not UTF-8, is too big or nested too deep to parse (bounds.py);
- empty, truncated or non-JSON text; JSON that is not an envelope; a bad checksum;
- a schema version newer than this code, or one with no upgrade step;
- a schema that does not match the key (`group-x` holding a `position`), a record naming itself differently
  from its key, an unknown or derived (forbidden) field, a missing field, a wrong type;
- a record that decodes but is impossible (validation.py: fills beyond the order, signs against the side,
  quantities no strategy here could have sent, duplicate ids, time running backwards);
- any key under our namespace that this template does not write (foreign keys: listed, never read);
- anything else that raises while one slot is read (any exception type): that slot is quarantined.
The original is never deleted or overwritten: its key is reported in `LoadOutcome.blocked` and the store
writes around it (spare slots). Work is bounded: one read and at most one bounded parse per slot.

Which slots are verified and parsed: every slot is read. One whose fields after the body are not exactly as
`seal` writes them (envelope.sealed_tail: a torn, truncated, re-laid-out or foreign value) is fully opened
and, being bad, quarantined. The others are taken newest first by the seq their tail states: the newest has
its checksum verified (a mismatch: fully opened, and quarantined as a bad checksum), then is parsed, decoded
and checked; an older slot is verified and parsed only when every newer one failed. An older slot behind a
valid version is never used as state and is neither verified nor parsed: a bit-rotten or hand-edited body
there (with its tail intact) is not reported, nor a hand-sealed impossible one; the record's next save
replaces that slot (the store writes to the slot that does not hold the loaded version). No unverified byte
is ever used: a slot is state only after its checksum matched and its body passed every check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

from core.ports import LogPort
from core.records import (
    AuditRecord,
    OrderGroupRecord,
    PositionRecord,
    Record,
    RiskDaysRecord,
    RiskRecord,
    StrategyStateRecord,
)
from persistence.archive import ArchiveRecord
from persistence.bounds import MAX_VALUE_CHARS
from persistence.codec import RecordError, from_body
from persistence.envelope import (
    EnvelopeError,
    SealedFrame,
    open_envelope,
    sealed_body,
    sealed_checksum_matches,
    sealed_tail,
)
from persistence.keys import (
    EXTENSION,
    Namespace,
    is_quarantine_key,
    parse_manifest_key,
    parse_record_key,
)
from persistence.migrations import MigrationError, upgrade
from persistence.ports import ObjectStorePort
from persistence.quarantine import Quarantine, QuarantineBudget, QuarantineEntry
from persistence.schemas import CURRENT_VERSION, MANIFEST_SCHEMA, MANIFEST_VERSION, SCHEMA_TYPES, schema_for_name
from persistence.validation import RecordCheck, check_record

StoredRecord = Union[Record, ArchiveRecord]


@dataclass
class LoadResult:
    """What `StateStore.load_all` found. Records are keyed by their own id (strategy_id, group_id, position_id)."""

    strategies: Dict[str, StrategyStateRecord] = field(default_factory=dict)
    groups: Dict[str, OrderGroupRecord] = field(default_factory=dict)
    positions: Dict[str, PositionRecord] = field(default_factory=dict)
    risk: Optional[RiskRecord] = None
    risk_days: Dict[str, RiskDaysRecord] = field(default_factory=dict)  # by month ("2024-03"), at most 12
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


@dataclass(slots=True)
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
    blocked: Set[str] = field(default_factory=set)  # quarantined slot keys: never written by the store
    failed: bool = False  # the key listing failed: nothing is known about what is stored


_Candidate = Tuple[int, str, Any, bool]  # seq, slot, record (or manifest dict), migrated
_READ_BACK = float("-inf")  # SlotState.written_at of a slot read back from disk


def _seq_of(candidate: _Candidate) -> int:
    return candidate[0]


def load_namespace(
    port: ObjectStorePort,
    namespace: Namespace,
    log: LogPort,
    check: RecordCheck = check_record,
    budget: Optional[QuarantineBudget] = None,
) -> LoadOutcome:
    """Never raises for any stored content; `check` is the semantic validation run after decoding."""
    result = LoadResult()
    outcome = LoadOutcome(result, {}, {}, {}, {}, None, [])
    try:
        all_keys = [str(key) for key in port.keys()]
    except Exception as error:  # a failing store must not stop the algorithm; it starts with nothing
        log.error(f"STATE LOAD FAILED: cannot list ObjectStore keys ({error!r}); starting with no saved state")
        outcome.failed = True
        return outcome
    quarantine = Quarantine(port, namespace, log, budget or QuarantineBudget())
    quarantine.start(all_keys)
    record_slots, manifest_slots, schemas = _sort_keys(all_keys, namespace, quarantine)

    def bad(key: str, data: Optional[bytes], reason: str) -> None:
        outcome.blocked.add(key)
        result.quarantined.append(quarantine.add(key, data, reason))

    reader = _SlotReader(port, bad, check)
    manifest_candidates = reader.read_record(None, MANIFEST_SCHEMA, manifest_slots)
    if manifest_candidates:
        seq, slot, manifest, _ = max(manifest_candidates, key=_seq_of)
        outcome.manifest = manifest
        outcome.manifest_slot = SlotState(slot, seq, _READ_BACK, seq)

    records, slot_states, seq_floor, read_record = outcome.records, outcome.slots, outcome.seq_floor, reader.read_record
    for name, slots in record_slots.items():
        candidates = read_record(name, schemas[name], slots)
        if not candidates:
            continue
        seq, slot, record, migrated = candidates[0] if len(candidates) == 1 else max(candidates, key=_seq_of)
        records[name] = record
        slot_states[name] = SlotState(slot, seq, _READ_BACK, seq)
        seq_floor[name] = seq
        if migrated:
            result.migrated.append(name)
    _settle_archive_and_manifest(outcome, record_slots)
    quarantine.finish()
    result.quarantined = list(quarantine.entries)
    return outcome


def _sort_keys(
    all_keys: List[str], namespace: Namespace, quarantine: Quarantine
) -> Tuple[Dict[str, Dict[str, str]], Dict[str, str], Dict[str, str]]:
    """(record name -> slot -> key, manifest slot -> key, record name -> schema); foreign keys go to quarantine
    (listed, not read)."""
    record_slots: Dict[str, Dict[str, str]] = {}
    schemas: Dict[str, str] = {}
    manifest_slots: Dict[str, str] = {}
    root = namespace.root + "/"  # Namespace.owns / relative, inlined: this runs once per stored key
    plain_record = namespace.plain_record_key()  # the usual key in one match; anything else: parse_record_key
    for key in sorted(key for key in all_keys if key.startswith(root)):
        match = plain_record(key)
        if match is not None:
            name = match[1]
        else:
            relative = key[len(root) :]
            if is_quarantine_key(relative):
                continue
            parsed = parse_record_key(relative)
            if parsed is None:
                manifest_slot = parse_manifest_key(relative)
                if manifest_slot is not None:
                    manifest_slots[manifest_slot] = key
                else:
                    quarantine.add(key, None, _FOREIGN)
                continue
            name = parsed[0]
        slots = record_slots.get(name)
        if slots is None:
            schema = schema_for_name(name)
            if schema is None:
                quarantine.add(key, None, _FOREIGN)
                continue
            schemas[name] = schema
            slots = record_slots[name] = {}
        slots[key[_SLOT_AT]] = key
    return record_slots, manifest_slots, schemas


_SLOT_AT = -1 - len(EXTENSION)  # where the slot letter of a record key is, from the end ("-<slot>.json")
_FOREIGN = "foreign key under our namespace (not written by this template; left in place)"


def _settle_archive_and_manifest(outcome: LoadOutcome, record_slots: Dict[str, Dict[str, str]]) -> None:
    """Drop retired leftovers from the live records, report lost and stale names, file the result."""
    result = outcome.result
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
            outcome.leftover_keys.extend(k for k in record_slots[name].values() if k not in outcome.blocked)

    records, slots, seq_floor = outcome.records, outcome.slots, outcome.seq_floor
    for name, listed_seq in outcome.manifest.items():
        if seq_floor.get(name, 0) < listed_seq:
            seq_floor[name] = listed_seq
        if name in records:
            if slots[name].seq < listed_seq:
                result.stale.append(name)
        elif retired.get(name, -1) < listed_seq:
            result.lost.append(name)
    result.stale.sort()
    result.lost.sort()

    seqs, groups, positions = result.seqs, result.groups, result.positions
    for name, record in records.items():
        seqs[name] = slots[name].seq
        # the two kinds there are thousands of, filed inline (start-up speed); records are of their exact type
        if type(record) is OrderGroupRecord:
            groups[record.group_id] = record
        elif type(record) is PositionRecord:
            positions[record.position_id] = record
        else:
            _file_result(result, record)
    result.retired_leftovers = sorted(outcome.leftover_keys)


def _file_result(result: LoadResult, record: StoredRecord) -> None:
    if isinstance(record, StrategyStateRecord):
        result.strategies[record.strategy_id] = record
    elif isinstance(record, OrderGroupRecord):
        result.groups[record.group_id] = record
    elif isinstance(record, PositionRecord):
        result.positions[record.position_id] = record
    elif isinstance(record, RiskRecord):
        result.risk = record
    elif isinstance(record, RiskDaysRecord):
        result.risk_days[record.month] = record
    elif isinstance(record, AuditRecord):
        result.audit = record


class _SlotReader:
    """Reads one slot into (seq, slot, record, migrated), or reports it bad and returns None. Every failure of
    one slot, of any exception type, ends there (BaseException, e.g. a simulated crash, is not caught)."""

    def __init__(
        self, port: ObjectStorePort, bad: Callable[[str, Optional[bytes], str], None], check: RecordCheck
    ) -> None:
        self._port = port
        self._bad = bad
        self._check = check
        self._read = stored_bytes_reader(port)

    def read_record(self, name: Optional[str], schema: str, slots: Dict[str, str]) -> List[_Candidate]:
        """The valid candidates of one record's slots (`name` None: the manifest's). Every slot is read once.
        A slot whose tail is not exactly as `seal` writes it (envelope.sealed_tail) is fully opened and checked
        now (a torn or foreign value is quarantined). The others are taken newest first by the seq their tail
        states, stopping at the first valid one: its checksum is verified (a mismatch takes the full path,
        which quarantines it or reads the same JSON written with other spacing), then its body is parsed,
        decoded and checked. A slot older than the loaded version is never used as state, so it is neither
        verified nor parsed (the store's next save of the record replaces it; were the newer slot bad, the
        older one would be verified, parsed and checked here before use). This halves the hashing and the
        parsing at start-up, where every record has two slots. `slots` lists the slots in slot order
        (_sort_keys builds it from sorted keys), which is the order equal seqs are taken in."""
        candidates: List[_Candidate] = []
        sealed: List[Tuple[int, str, str, bytes, SealedFrame]] = []
        read = self._read
        for slot, key in slots.items():
            try:
                data = read(key)
            except Exception as error:
                self._bad(key, None, f"unreadable (read raised {type(error).__name__}: {str(error)[:200]})")
                continue
            frame = sealed_tail(data) if len(data) <= MAX_VALUE_CHARS else None
            if frame is not None and frame[1] == schema:
                sealed.append((frame[0], slot, key, data, frame))
                continue
            candidate = self._checked(key, data, slot, schema, name, frame=None)
            if candidate is not None:
                candidates.append(candidate)
        if len(sealed) == 2:  # the usual two slots: newest first; equal seqs keep slot order, as max() did
            if sealed[1][0] > sealed[0][0]:
                sealed.reverse()
        elif len(sealed) > 2:
            sealed.sort(key=_newest_first)  # stable, as above
        for seq, slot, key, data, frame in sealed:
            if candidates and max(candidate[0] for candidate in candidates) >= seq:
                break  # older than a valid version: not state, left as it is
            # the checksum is verified here, before use: one that does not match takes the full path, which
            # says why (and quarantines it) or reads the same JSON written with other spacing
            verified = frame if sealed_checksum_matches(data, frame) else None
            candidate = self._checked(key, data, slot, schema, name, frame=verified)
            if candidate is not None:
                candidates.append(candidate)
        return candidates

    def _checked(
        self, key: str, data: bytes, slot: str, schema: str, name: Optional[str], *, frame: Optional[SealedFrame]
    ) -> Optional[_Candidate]:
        """The candidate of one slot that `schema` and `name` (None: the manifest) expect, or None when it is
        bad (then reported). `frame`: the bytes' sealed frame, checksum verified (only the body is then parsed);
        None: the full path, open_envelope."""
        try:
            if frame is not None:
                seq, stored_schema, version = frame[0], frame[1], frame[2]
                stored_body = sealed_body(data, frame)
            else:
                envelope = open_envelope(_text_of(data))
                seq, stored_schema, version = envelope.seq, envelope.schema, envelope.version
                stored_body = envelope.body
            if stored_schema != schema:
                raise RecordError(f"schema {stored_schema!r} does not match the key (expects {schema!r})")
            if name is None:
                return seq, slot, _manifest_body(version, stored_body), False
            if version == CURRENT_VERSION.get(schema):  # what this code wrote: no upgrade step to look for
                body, migrated = stored_body, False
            else:
                body, migrated = upgrade(schema, version, stored_body)
            record: Any = from_body(SCHEMA_TYPES[schema], body)
            if record.record_name != name:
                raise RecordError(f"the record names itself {record.record_name!r}, the key says {name!r}")
            problem = self._check(record)
            if problem is not None:
                raise RecordError(f"impossible {schema} record: {problem}")
            return seq, slot, record, migrated
        except (EnvelopeError, MigrationError, RecordError) as error:
            self._bad(key, data, str(error)[:400])
        except Exception as error:  # a bug or an input nobody foresaw: still only this slot is lost
            self._bad(key, data, f"loading raised {type(error).__name__}: {str(error)[:200]}")
        return None


def _text_of(data: bytes) -> str:
    """The UTF-8 text of a stored value within the size bound; EnvelopeError otherwise."""
    if len(data) > MAX_VALUE_CHARS:
        raise EnvelopeError(f"value of {len(data):,} bytes is over the {MAX_VALUE_CHARS:,} limit; not parsed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EnvelopeError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None


def stored_bytes_reader(port: ObjectStorePort) -> Callable[[str], bytes]:
    """The reader of a key's stored bytes, its read method looked up once (a start-up reads every slot). LEAN's
    ObjectStore.ReadBytes when the port has it (`read_bytes`), so bytes that are not UTF-8 are seen as such;
    else the text of `read` (LEAN's Read decodes UTF-8 with U+FFFD for bad bytes, ObjectStore.Read /
    Encoding.UTF8.GetString) encoded back."""
    read_bytes = getattr(port, "read_bytes", None)
    if callable(read_bytes):

        def read_bytes_of(key: str) -> bytes:
            data = read_bytes(key)
            if data is None:  # LocalObjectStore.ReadBytes returns null for a key registered with no content
                raise KeyError(f"{key} has no content")
            return data if type(data) is bytes else bytes(bytearray(data))

        return read_bytes_of
    read = port.read

    def read_text_of(key: str) -> bytes:
        return read(key).encode("utf-8", errors="surrogatepass")

    return read_text_of


def _newest_first(item: Tuple[int, str, str, bytes, SealedFrame]) -> int:
    return -item[0]


def _manifest_body(version: int, body: Dict[str, Any]) -> Dict[str, int]:
    if version != MANIFEST_VERSION:
        raise MigrationError(f"manifest version {version} is not v{MANIFEST_VERSION}")
    records = body.get("records") if body.keys() == {"records"} else None
    if type(records) is not dict or not all(
        type(name) is str and type(seq) is int and seq >= 0 for name, seq in records.items()
    ):
        raise RecordError("manifest body must be {'records': {name: seq}}")
    return dict(records)


__all__ = ["LoadOutcome", "LoadResult", "QuarantineEntry", "SlotState", "StoredRecord", "load_namespace"]
