"""Quarantine: what the loader does with a stored value that is not valid state. Bounded, and it loses nothing.

Invariants
1. The original key is never changed by the template: the loader reads around it, and the store never
   writes to a quarantined slot key (store.py picks a spare slot instead) until a person deletes the key.
   So nothing is lost even when no copy can be made.
2. Copies are a convenience for research (the notebook lists them), inside their own budget: at most
   `QuarantineBudget.max_keys` keys and `max_bytes` bytes under `quarantine/` (copies already there count),
   no copy larger than `max_copy_bytes`, and none when the store's file count (every key of the workspace,
   as LEAN's LocalObjectStore.IsWithinStorageLimit counts them) would come within `live_reserve_files` of
   its quota. Findings that get no copy are listed in the index, which is the one key kept for that.
3. A copy of UTF-8 text is the exact text; bytes that are not UTF-8 are copied as
   `{"base64": ..., "key": ...}`, never as replacement characters.
4. `quarantine/index.json` lists the findings (original key, content digest, size, reason, copy key;
   bounded, with a count of the rest). A finding already in the index (same key, same bytes) is "known":
   counted and summarised, not logged again line by line on every restart.
5. Work is linear in the number and size of the values: one digest per value, at most `max_keys` copies,
   at most `log_limit` log lines per load plus one summary line.
Foreign keys (keys under our namespace that the template never writes) are listed, never read: the template
never writes them either, so they cannot be lost, and reading hundreds of them would only slow start-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from core.ports import LogPort
from persistence.bounds import text_problem
from persistence.keys import QUARANTINE_FOLDER, Namespace
from persistence.ports import ObjectStorePort

INDEX_NAME = "index"
QC_BASE_FILES = 1_000  # QuantConnect's smallest ObjectStore quota: the assumption when the store cannot say
QC_BASE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class QuarantineBudget:
    max_keys: int = 32  # copies + the index
    max_bytes: int = 2 * 1024 * 1024
    max_copy_bytes: int = 512 * 1024
    live_reserve_files: int = 100  # files left free for the template's own records
    index_entries: int = 50
    log_limit: int = 20  # individual log lines per load; the rest are counted in one line


@dataclass(frozen=True)
class QuarantineEntry:
    key: str  # the bad original (left in place)
    quarantine_key: Optional[str]  # where the copy is; None when no copy was made (see `reason`)
    reason: str
    digest: str = ""  # sha256 prefix of the original's bytes ("" when they could not be read)
    size: int = -1  # bytes of the original (-1: not read)
    known: bool = False  # already listed by the index of an earlier load (not logged again)


@dataclass
class Quarantine:
    """One load's quarantine: collects findings, copies within budget, writes the index once (`finish`)."""

    port: ObjectStorePort
    namespace: Namespace
    log: LogPort
    budget: QuarantineBudget = field(default_factory=QuarantineBudget)
    entries: List[QuarantineEntry] = field(default_factory=list)
    _known: Set[Tuple[str, str]] = field(default_factory=set)
    _copies: Set[str] = field(default_factory=set)
    _bytes: int = 0
    _store_files: int = 0
    _max_files: int = QC_BASE_FILES
    _max_bytes: int = QC_BASE_BYTES
    _logged: int = 0

    def start(self, all_keys: List[str]) -> None:
        """Take stock before the first finding: existing copies, the index, the store's quota."""
        folder = self.namespace.root + "/" + QUARANTINE_FOLDER + "/"
        index_key = self.index_key()
        self._store_files = len(all_keys)
        self._max_files, self._max_bytes = _quota(self.port)
        for key in all_keys:
            if key.startswith(folder) and key != index_key:
                self._copies.add(key)
                self._bytes += _size_in_key(key)
        self._known = _read_index(self.port, index_key)

    def index_key(self) -> str:
        return self.namespace.key(f"{QUARANTINE_FOLDER}/{INDEX_NAME}.json")

    def add(self, key: str, data: Optional[bytes], reason: str) -> QuarantineEntry:
        """Record one bad value (`data` None: not read) and copy it when the budget allows."""
        digest = hashlib.sha256(data).hexdigest()[:16] if data is not None else ""
        size = len(data) if data is not None else -1
        known = (key, digest) in self._known
        copy_key, why_not = self._copy(key, data, digest) if data is not None else (None, "not read")
        note = reason if copy_key is not None or why_not == "not read" else f"{reason} [no copy: {why_not}]"
        entry = QuarantineEntry(key, copy_key, note, digest, size, known)
        self.entries.append(entry)
        if not known:
            self._log_once(f"QUARANTINE {key} -> {copy_key or 'left in place'}: {note}; loading goes on without it")
        return entry

    def finish(self) -> None:
        """One summary line for what was not logged, and the index rewritten when the findings changed."""
        known = sum(1 for entry in self.entries if entry.known)
        unlogged = len(self.entries) - known - min(self._logged, self.budget.log_limit)
        if unlogged > 0 or known:
            self.log.error(
                f"QUARANTINE: {len(self.entries)} value(s) under {self.namespace.root} are not valid state "
                f"({known} known from an earlier load, {max(unlogged, 0)} more not listed above); "
                f"see {self.index_key()}"
            )
        listed = {(entry.key, entry.digest) for entry in self.entries[: self.budget.index_entries]}
        if listed != self._known:
            self._write_index()

    # -- internals -------------------------------------------------------------------------------------------

    def _log_once(self, message: str) -> None:
        if self._logged < self.budget.log_limit:
            self.log.error(message)
        self._logged += 1

    def _copy(self, key: str, data: bytes, digest: str) -> Tuple[Optional[str], str]:
        text = _copy_text(key, data)
        size = len(text.encode("utf-8"))
        copy_key = self.namespace.quarantine_key(key, f"{digest}-{size}")
        if copy_key in self._copies:
            return copy_key, ""
        budget = self.budget
        if size > budget.max_copy_bytes:
            return None, f"{size:,} bytes is over the {budget.max_copy_bytes:,} byte copy limit"
        max_bytes = min(budget.max_bytes, self._max_bytes // 20)
        if len(self._copies) + 2 > budget.max_keys or self._bytes + size > max_bytes:
            return None, f"quarantine budget full ({len(self._copies)} copies, {self._bytes:,} bytes)"
        if self._store_files + 2 + budget.live_reserve_files > self._max_files:
            return None, f"the store is near its {self._max_files:,} file quota; room is kept for live records"
        try:
            saved = bool(self.port.save(copy_key, text))
        except Exception as error:
            return None, f"copy raised {error!r}"
        if not saved:
            return None, "the ObjectStore refused the copy (quota)"
        self._copies.add(copy_key)
        self._bytes += size
        self._store_files += 1
        return copy_key, ""

    def _write_index(self) -> None:
        limit = self.budget.index_entries
        listed = [
            {"key": e.key, "digest": e.digest, "size": e.size, "reason": e.reason[:300], "copy": e.quarantine_key}
            for e in self.entries[:limit]
        ]
        text = json.dumps({"entries": listed, "more": max(0, len(self.entries) - limit)}, sort_keys=True)
        try:
            if not self.port.save(self.index_key(), text):
                self.log.error(f"QUARANTINE: the ObjectStore refused the index {self.index_key()}")
        except Exception as error:
            self.log.error(f"QUARANTINE: writing the index raised {error!r}")


def _copy_text(key: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps({"base64": base64.b64encode(data).decode("ascii"), "key": key}, sort_keys=True)


def _size_in_key(key: str) -> int:
    """Copies are named `<original>-<digest>-<bytes>.json`; older or foreign names count as a full copy."""
    stem = key.rsplit("/", 1)[-1].removesuffix(".json")
    tail = stem.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() and len(tail) < 12 else QuarantineBudget.max_copy_bytes


def _quota(port: ObjectStorePort) -> Tuple[int, int]:
    """(max files, max bytes) when the port can say (LEAN's ObjectStore.MaxFiles / MaxSize), else QC's base."""
    quota = getattr(port, "quota", None)
    try:
        files, size = quota() if callable(quota) else (QC_BASE_FILES, QC_BASE_BYTES)
        return (int(files), int(size)) if files > 0 and size > 0 else (QC_BASE_FILES, QC_BASE_BYTES)
    except Exception:
        return QC_BASE_FILES, QC_BASE_BYTES


def _read_index(port: ObjectStorePort, index_key: str) -> Set[Tuple[str, str]]:
    """(key, digest) pairs of the last index; empty when it is missing or not what we wrote."""
    try:
        if not port.contains_key(index_key):
            return set()
        text = port.read(index_key)
        if text_problem(text) is not None:
            return set()
        raw: Any = json.loads(text)
        entries: List[Dict[str, Any]] = raw.get("entries", []) if type(raw) is dict else []
        return {(str(e["key"]), str(e["digest"])) for e in entries if type(e) is dict and "key" in e and "digest" in e}
    except Exception:
        return set()


__all__ = ["Quarantine", "QuarantineBudget", "QuarantineEntry"]
