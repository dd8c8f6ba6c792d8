"""`StateStore`: the records of one namespace over an ObjectStore port, crash-consistent without atomic writes.

LEAN's store keeps saves in memory and flushes them ~5 s later, key by key, in no particular order, with no
temp file (LocalObjectStore.PersistData): a crash can leave any subset of the pending keys on disk and one of them torn,
while deletes hit disk at once. The store is built so that every such outcome loads into a state recovery
can work with.

Invariants
1. Every value is an envelope (schema, version, seq, saved_at, checksum): a torn or foreign value is refused
   by its checksum/shape, never loaded (envelope.py, loader.py).
2. Each record has two slot keys, `<name>-a` and `<name>-b`; each write carries the record's next seq.
   Load picks the valid slot with the highest seq.
3. Sticky slots: a write goes to the slot that does NOT hold the newest version known to be on disk, and
   keeps going to that same slot until its content is known to be on disk (a `flush()` that returned True,
   or `durable_after_seconds` of wall-clock time, past LEAN's 5 s flush timer). So a torn write can only hit
   a slot whose content is not needed: the other slot still holds the last version known durable.
   Residual risk (documented, tested as such): if the backend flushes on its own, unknown to us, inside that
   window, and the very next write of the same record is torn by a crash, the record loads one version
   older than what had reached disk. Recovery reconciles against the broker's holdings anyway (README, What happens on
   a restart).
4. The manifest (two slots as well) lists every live record name with the seq of its latest successful
   save; `save_dirty` rewrites it when anything changed. On load, a name the manifest lists with no valid
   slot is reported `lost`, a loaded seq lower than listed is reported `stale`. Seqs only grow (they resume
   above anything a slot, the manifest or the archive mentions), so "newer" is always well defined.
5. Nothing is deleted except the slots of a retired record, and only after the archive that holds it is
   known to be on disk (flush() True, or `retire_delete_after_seconds` of wall-clock time after its save):
   deletes are immediate while saves are not, so deleting first could lose both copies.
6. Every save's bool is checked. False (over quota) or an exception: logged loudly, audited ("save-failed"),
   the record stays dirty and is retried by the next `put` or `save_dirty`.
7. `put` of an unchanged record writes nothing; `save_dirty` with nothing dirty does no encoding and makes
   no port call.
8. Loading happens once per store (`load_all`), whatever it finds: it never raises and is never retried by a
   later save. A slot whose value was quarantined is never written (the original stays for a person to
   read): the record uses the first two of its slots a, b, c, d whose keys are not quarantined. A load that
   could not even list the keys starts its seqs above the clock's milliseconds, so a later load still
   prefers what this run writes over anything older it could not see.
9. The findings of a load are audited in one batch (counts and a bounded list per kind), not per record.

Writes that must be durable before an order is placed: `put(record, immediate=True)` and then `flush()`.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime
from typing import Callable, Dict, FrozenSet, List, Optional, Set

from core.ports import LogPort
from core.records import AuditEntry, AuditRecord, OrderGroupRecord, PositionRecord
from persistence.archive import ArchiveLimits, ArchiveRecord, archive_text, archive_with
from persistence.codec import RecordError, canonical_json, record_json
from persistence.envelope import seal
from persistence.keys import ALL_SLOTS, SLOTS, Namespace
from persistence.loader import (
    LoadOutcome,
    LoadResult,
    QuarantineEntry,
    SlotState,
    StoredRecord,
    load_namespace,
)
from persistence.ports import ObjectStorePort
from persistence.quarantine import QuarantineBudget
from persistence.schemas import (
    CURRENT_VERSION,
    MANIFEST_SCHEMA,
    MANIFEST_VERSION,
    RETIRABLE_SCHEMAS,
    schema_for_name,
    schema_of,
)
from persistence.validation import RecordLimits, record_check

_MANIFEST = "\x00manifest"  # internal name for the manifest's slot state (no record can be named so)
_FINDINGS_LISTED = 10  # names listed per kind in the one audit entry of a load


def _promote_to_oldest_generation() -> None:
    """Move every object the collector tracks into its oldest generation (gc.freeze then gc.unfreeze: two list
    splices, no scan). The records just loaded live as long as the run or until replaced; left young, the
    first allocation after the load would scan all of them (some 300,000 objects for 10,000 order groups and
    10,000 positions, a tenth of the load's time) and the next middle-generation collection again, only to
    promote them. Full collections still see them. Skipped when something else has frozen objects
    (gc.get_freeze_count()), so a freeze made by the host process is never undone here."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


class StateStore:
    """Typed records in, crash-consistent keys out. See the module docstring for the invariants."""

    def __init__(
        self,
        port: ObjectStorePort,
        namespace: Namespace,
        clock: Callable[[], datetime],
        log: LogPort,
        *,
        wall_clock: Callable[[], float] = time.monotonic,
        durable_after_seconds: float = 10.0,
        retire_delete_after_seconds: float = 60.0,
        audit_max_entries: int = 200,
        audit_max_bytes: int = 48 * 1024,
        archive_limits: Optional[ArchiveLimits] = None,
        record_limits: Optional[RecordLimits] = None,
        quarantine_budget: Optional[QuarantineBudget] = None,
    ) -> None:
        self.port = port
        self.namespace = namespace
        self._clock = clock
        self._log = log
        self.flush_failed = False  # the last flush could not confirm its writes (not: "cannot flush here")
        self._wall = wall_clock
        self._durable_after = durable_after_seconds
        self._delete_after = retire_delete_after_seconds
        self._audit_max_entries = audit_max_entries
        self._audit_max_bytes = audit_max_bytes
        self._archive_limits = archive_limits if archive_limits is not None else ArchiveLimits()
        self._check = record_check(record_limits or RecordLimits())
        self._quarantine_budget = quarantine_budget
        self._blocked: Set[str] = set()  # quarantined slot keys: left untouched, never written
        self._loaded = False
        self._records: Dict[str, StoredRecord] = {}
        self._body_text: Dict[str, str] = {}  # canonical body of a dirty record, encoded once by put
        self._dirty: Set[str] = set()
        self._failed: Set[str] = set()  # dirty because a save failed: retried by the next put too
        self._seq: Dict[str, int] = {}
        self._slots: Dict[str, SlotState] = {}
        self._manifest: Dict[str, int] = {}
        self._manifest_dirty = False
        self._retiring: Dict[str, int] = {}  # record name -> archive seq that must be on disk first
        self._keys: Dict[str, str] = {}  # (name + slot) -> key, built once
        self._seq_base = 0  # seqs start above this (the clock's milliseconds after a load that saw nothing)
        self._stamp: tuple[object, str] = (None, "")  # the last saved_at: ((time, its zone), its ISO text)

    # -- reading -------------------------------------------------------------------------------------------------

    def load_all(self) -> LoadResult:
        """The start-up read: newest valid version of every record; never raises on bad data (see loader.py).
        Runs once: the store is marked loaded before reading, so nothing a later save does repeats it."""
        self._loaded = True
        # the load builds tens of thousands of small objects that hold no reference cycles: the cyclic garbage
        # collector, triggered by allocation counts, would walk them again and again (about half of a large
        # load's time). Paused for the load only, and restored as it was whatever happens.
        collecting = gc.isenabled()
        gc.disable()
        try:
            outcome = load_namespace(self.port, self.namespace, self._log, self._check, self._quarantine_budget)
        except Exception as error:  # loader.py never raises by design; if it does, start empty, do not retry
            self._log.error(f"STATE LOAD FAILED: {error!r}; starting with no saved state")
            outcome = LoadOutcome(LoadResult(), {}, {}, {}, {}, None, [], failed=True)
        finally:
            _promote_to_oldest_generation()
            if collecting:
                gc.enable()
        self._records = dict(outcome.records)
        self._blocked = set(outcome.blocked)
        self._body_text.clear()
        self._dirty.clear()
        self._failed.clear()
        self._retiring.clear()
        self._seq = dict(outcome.seq_floor)
        self._slots = dict(outcome.slots)
        if outcome.failed:
            self._seq_base = int(self._clock().replace(tzinfo=UTC).timestamp() * 1000)
        if outcome.manifest_slot is not None:
            self._slots[_MANIFEST] = outcome.manifest_slot
            self._seq[_MANIFEST] = outcome.manifest_slot.seq
        self._manifest = {name: state.seq for name, state in outcome.slots.items() if name in self._records}
        self._manifest_dirty = self._manifest != outcome.manifest
        result = outcome.result
        # the archive was just read from disk, so leftovers of retired records can go now (invariant 5)
        for key in outcome.leftover_keys:
            self._delete(key)
        self._audit_findings(result)
        for name in result.lost[:_FINDINGS_LISTED]:
            self._log.error(f"STATE LOST: {name} is in the manifest but no valid copy was found")
        if len(result.lost) > _FINDINGS_LISTED:
            self._log.error(f"STATE LOST: {len(result.lost) - _FINDINGS_LISTED} more record(s) not listed above")
        for name in result.stale[:_FINDINGS_LISTED]:
            self._log.error(f"STATE STALE: {name} loaded an older version than the manifest lists")
        if result.migrated:
            self._log.info(f"state migrated to the current schema versions: {', '.join(sorted(result.migrated))}")
        return result

    def _audit_findings(self, result: LoadResult) -> None:
        """One audit entry per kind of finding (new quarantines, lost, stale), each with its count and the first
        names, added in one put: the trail is encoded once per load, not once per record."""
        new = [entry for entry in result.quarantined if not entry.known]
        kinds = (
            ("quarantine", [f"{e.key} ({e.reason[:80]}; copy: {e.quarantine_key})" for e in new]),
            ("lost", [f"{name} (listed in the manifest, no valid slot)" for name in result.lost]),
            ("stale", [f"{name} (older slot than the manifest lists)" for name in result.stale]),
        )
        entries = []
        for kind, items in kinds:
            if items:
                listed = "; ".join(items[:_FINDINGS_LISTED])
                more = f" (+{len(items) - _FINDINGS_LISTED} more)" if len(items) > _FINDINGS_LISTED else ""
                ref = items[0].split(" ", 1)[0] if len(items) == 1 else f"{len(items)} records"
                entries.append((kind, f"{len(items)} at load: {listed}{more}", ref))
        if entries:
            self._audit_many(entries)

    def get(self, record_name: str) -> Optional[StoredRecord]:
        """The current version of a record (saved or not yet)."""
        return self._records.get(record_name)

    @property
    def dirty_names(self) -> FrozenSet[str]:
        return frozenset(self._dirty)

    @property
    def failed_names(self) -> FrozenSet[str]:
        return frozenset(self._failed)

    # -- writing -------------------------------------------------------------------------------------------------

    def put(self, record: StoredRecord, immediate: bool = True) -> bool:
        """Make `record` the current version. immediate: save now and return the save's bool (False = not
        stored, e.g. over quota: do not act on it). Not immediate: mark dirty for the next save_dirty; True.
        An unchanged record writes nothing and returns True."""
        if not self._loaded:
            self.load_all()
        try:
            name = record.record_name
            schema = schema_of(record)
        except (AttributeError, TypeError) as error:
            self._log.error(f"STATE SAVE REFUSED: {error}")
            return False
        current = self._records.get(name)
        if (current is record or current == record) and name not in self._dirty:
            return True
        # a record of the same type already holds this name: the name was checked against the schema then
        if type(current) is not type(record) and schema_for_name(name) != schema:
            self._log.error(f"STATE SAVE REFUSED: record name {name!r} does not fit schema {schema!r}")
            return False
        try:
            body_text = _encoded(record)
        except RecordError as error:
            self._log.error(f"STATE SAVE REFUSED: {name} is not a valid {schema} record: {error}")
            if name != "audit":
                self.audit("save-failed", f"not a valid record: {error}", name)
            return False
        self._records[name] = record
        self._body_text[name] = body_text
        self._dirty.add(name)
        self._retiring.pop(name, None)  # put again after retire: it is live again, keep its slots
        if not immediate:
            return True
        saved = self._write(name)
        if self._failed and (len(self._failed) > 1 or name not in self._failed):
            for other in sorted(self._failed - {name}):
                self._write(other)
        return saved

    def save_dirty(self) -> int:
        """Write every dirty record (and the manifest when anything changed). Returns the number of keys
        written. Nothing dirty: returns 0 at once, no encoding, no port call (the 5-minute and 15:45 saves)."""
        if not (self._dirty or self._manifest_dirty or self._retiring):
            return 0
        if not self._loaded:
            self.load_all()
        written = 0
        for name in sorted(self._dirty):
            if name in self._dirty and self._write(name):
                written += 1
        if "audit" in self._dirty and self._write("audit"):  # a failure above may have audited
            written += 1
        if self._manifest_dirty and self._write_manifest():
            written += 1
        self._delete_retired_when_safe()
        return written

    def flush(self) -> bool:
        """Ask the port to put pending saves on disk now; True only when it did and confirmed it (LocalObjectStore).

        False with `flush_failed` set: the port raised (e.g. a write it could not confirm on disk); False alone:
        the backend cannot flush on request (QC Cloud), nothing more is known."""
        self.flush_failed = False
        try:
            flushed = bool(self.port.flush())
        except Exception as error:
            self.flush_failed = True
            self._log.error(f"STATE FLUSH FAILED: {error!r}")
            self.audit("flush-failed", f"flush not confirmed: {error!r}")
            return False
        if flushed:
            for state in self._slots.values():
                state.durable_seq = state.seq
            self._delete_retired_when_safe()
        return flushed

    def audit(self, kind: str, message: str, ref: str = "") -> None:
        """Append to the bounded audit trail (saved by the next save_dirty)."""
        self._audit_many([(kind, message, ref)])

    def _audit_many(self, items: List[tuple[str, str, str]]) -> None:
        current = self._records.get("audit")
        entries = current.entries if isinstance(current, AuditRecord) else ()
        now = self._clock()
        added = [AuditEntry(now, kind[:40], message[:400], ref[:120]) for kind, message, ref in items]
        kept = list((*entries, *added)[-self._audit_max_entries :])
        size = sum(_entry_size(item) for item in kept)
        while size > self._audit_max_bytes and len(kept) > 1:
            size -= _entry_size(kept.pop(0))
        self.put(AuditRecord(tuple(kept)), immediate=False)

    def retire(self, *record_names: str) -> bool:
        """Move finished group/position records into the bounded archive, then (once the archive is known to be
        on disk) delete their slot keys, so the file count stays flat. Returns the archive save's bool."""
        if not self._loaded:
            self.load_all()
        moving: List[tuple[PositionRecord | OrderGroupRecord, int]] = []
        for name in record_names:
            record = self._records.get(name)
            if schema_for_name(name) not in RETIRABLE_SCHEMAS:
                self._log.error(f"STATE RETIRE REFUSED: {name!r} is not a group or position record")
                return False
            if isinstance(record, (PositionRecord, OrderGroupRecord)):
                moving.append((record, self._seq.get(name, 0)))
        if not moving:
            return True
        archive = self._records.get("archive")
        base = archive if isinstance(archive, ArchiveRecord) else ArchiveRecord()
        needed_seq = self._seq.get("archive", 0) + 1
        for record, _ in moving:
            name = record.record_name
            for table in (self._records, self._body_text, self._manifest):
                table.pop(name, None)
            self._dirty.discard(name)
            self._failed.discard(name)
            self._retiring[name] = needed_seq
        self._manifest_dirty = True
        return self.put(archive_with(base, moving, self._clock(), self._archive_limits), immediate=True)

    # -- internals -----------------------------------------------------------------------------------------------

    def _key(self, name: str, slot: str) -> str:
        cache_key = name + "/" + slot
        key = self._keys.get(cache_key)
        if key is None:
            if name == _MANIFEST:
                key = self.namespace.manifest_key(slot)
            else:
                key = self.namespace.record_key(name, slot)
            self._keys[cache_key] = key
        return key

    def _usable_slots(self, name: str) -> tuple[str, str]:
        """The two slots this record writes: the first of a, b, c, d whose keys hold no quarantined value."""
        if not self._blocked:
            return SLOTS
        usable = [slot for slot in ALL_SLOTS if self._key(name, slot) not in self._blocked]
        if len(usable) >= 2:
            return usable[0], usable[1]
        if len(usable) == 1:  # three bad values for one record: one slot left, a torn write costs a version
            return usable[0], usable[0]
        self._log.error(f"STATE: every slot of {name} holds a quarantined value; overwriting slot a and b")
        return SLOTS

    def _next_slot(self, name: str) -> str:
        first, second = self._usable_slots(name)
        state = self._slots.get(name)
        if state is None:
            return first
        known_durable = state.durable_seq >= state.seq or self._wall() - state.written_at >= self._durable_after
        if known_durable or state.slot not in (first, second):
            return second if state.slot == first else first
        return state.slot  # keep rewriting the not-yet-durable slot; the other one holds the durable version

    def _seq_of(self, name: str) -> int:
        """The highest seq known for `name`: this process's last write, else the archive's retired entry (a
        retired record written again must resume above it, or the loader would take it for a leftover)."""
        seq = self._seq.get(name)
        if seq is not None:
            return seq
        archive = self._records.get("archive")
        if isinstance(archive, ArchiveRecord):
            return max((entry.seq for entry in archive.retired if entry.record_name == name), default=0)
        return 0

    def _save(self, name: str, schema: str, version: int, body_text: str) -> bool:
        seq = max(self._seq_of(name), self._seq_base) + 1
        slot = self._next_slot(name)
        key = self._key(name, slot)
        text = seal(schema, version, seq, self._saved_at(), body_text)
        try:
            saved = bool(self.port.save(key, text))
            problem = "the ObjectStore refused it (returned False: over the size/file quota?)"
        # a raising store must not kill the algorithm (an escaping exception is LEAN's SetRuntimeError)
        except Exception as error:
            saved, problem = False, f"the ObjectStore raised {error!r}"
        if not saved:
            self._log.error(f"STATE SAVE FAILED: {key} seq {seq}: {problem}; kept dirty, will retry")
            return False
        state = self._slots.get(name)
        if state is None:
            self._slots[name] = SlotState(slot, seq, self._wall(), 0)
        else:  # updated in place (durable_seq stays): one object per record, not one per save
            state.slot, state.seq, state.written_at = slot, seq, self._wall()
        self._seq[name] = seq
        return True

    def _saved_at(self) -> str:
        """The envelope's saved_at: the clock's ISO text, formatted once per distinct time (a bar saves several
        records at the same algorithm time)."""
        now = self._clock()
        if (now, now.tzinfo) != self._stamp[0]:
            self._stamp = ((now, now.tzinfo), now.isoformat())
        return self._stamp[1]

    def _write(self, name: str) -> bool:
        record = self._records[name]
        schema = schema_of(record)
        body_text = self._body_text.get(name)
        if body_text is None:
            body_text = _encoded(record)
        if not self._save(name, schema, CURRENT_VERSION[schema], body_text):
            if name not in self._failed:
                self._failed.add(name)
                if name != "audit":
                    self.audit("save-failed", "ObjectStore save returned False or raised; retrying", name)
            return False
        self._dirty.discard(name)
        self._failed.discard(name)
        self._body_text.pop(name, None)
        self._manifest[name] = self._seq[name]
        self._manifest_dirty = True
        return True

    def _write_manifest(self) -> bool:
        body_text = canonical_json({"records": self._manifest})
        if not self._save(_MANIFEST, MANIFEST_SCHEMA, MANIFEST_VERSION, body_text):
            return False
        self._manifest_dirty = False
        return True

    def _delete_retired_when_safe(self) -> None:
        archive = self._slots.get("archive")
        if not self._retiring or archive is None:
            return
        aged = self._wall() - archive.written_at >= self._delete_after
        for name, needed_seq in list(self._retiring.items()):
            if archive.durable_seq >= needed_seq or (archive.seq >= needed_seq and aged):
                for slot in set(self._usable_slots(name)):
                    self._delete(self._key(name, slot))
                del self._retiring[name]
                self._forget(name)

    def _forget(self, name: str) -> None:
        """Drop what this process remembers about a record whose slots are gone, so no map grows with the
        number of records ever written. Its seq lives on in the archive's retired list (see `_seq_of`)."""
        self._slots.pop(name, None)
        self._seq.pop(name, None)
        for slot in ALL_SLOTS:
            self._keys.pop(name + "/" + slot, None)

    def _delete(self, key: str) -> None:
        try:
            self.port.delete(key)
        except Exception as error:
            self._log.error(f"STATE DELETE FAILED: {key}: {error!r}")


def _encoded(record: StoredRecord) -> str:
    """The canonical body text; the archive's is assembled from its items' remembered texts (archive.py)."""
    return archive_text(record) if isinstance(record, ArchiveRecord) else record_json(record)


def _entry_size(entry: AuditEntry) -> int:
    return len(entry.kind) + len(entry.message) + len(entry.ref) + 80  # + timestamp and JSON punctuation


__all__ = ["LoadResult", "QuarantineEntry", "StateStore"]
