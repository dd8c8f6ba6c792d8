"""The archive: where finished positions and their order groups go, so the store's file count stays flat.

QC's base quota is 1,000 files (README, How state is stored) and every record costs two slot keys, so records of
finished
cycles cannot stay as live keys for a year. `StateStore.retire` moves them here: one record (two slots) that
holds the newest retired positions and groups, bounded by count and by encoded size (oldest dropped first).
The research notebook reads it through `LoadResult.archived_positions` / `archived_groups`.

`retired` lists (record name, seq) of every retired record still remembered: if the process died after the
archive reached disk but before the old slot keys were deleted, the loader sees those leftovers, knows they
are retired (their seq is not newer than the retired one) and deletes them instead of loading them as live.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Dict, Iterable, Tuple

from core.records import OrderGroupRecord, PositionRecord
from persistence.codec import record_json


@dataclass(frozen=True)
class RetiredEntry:
    record_name: str
    seq: int  # the seq of the record's last saved version; a later slot with a higher seq is live again
    retired_at: datetime


@dataclass(frozen=True)
class ArchiveRecord:
    positions: Tuple[PositionRecord, ...] = ()  # oldest first
    groups: Tuple[OrderGroupRecord, ...] = ()  # oldest first
    retired: Tuple[RetiredEntry, ...] = ()  # oldest first

    @property
    def record_name(self) -> str:
        return "archive"


@dataclass(frozen=True)
class ArchiveLimits:
    """About two months of finished cycles (two LT112 a month, a weekly 0DTE): enough for research to see
    recent trades, small enough that stored bytes reach their plateau within the first months and the
    archive, rewritten on every retire, stays cheap to save. Older cycles live on only in the audit trail and
    the risk record's figures."""

    max_positions: int = 16
    max_groups: int = 48
    max_retired: int = 120  # only needs to outlive leftover slot keys (deleted a minute after retiring)
    max_bytes: int = 48 * 1024  # encoded body; the store keeps two slots, so twice this on disk at most


def archive_with(
    archive: ArchiveRecord,
    records: Iterable[Tuple[PositionRecord | OrderGroupRecord, int]],
    now: datetime,
    limits: ArchiveLimits,
) -> ArchiveRecord:
    """`archive` plus the given (record, seq) pairs, then trimmed to `limits` (oldest dropped first)."""
    positions = list(archive.positions)
    groups = list(archive.groups)
    retired = list(archive.retired)
    for record, seq in records:
        name = record.record_name
        if isinstance(record, PositionRecord):
            positions = [p for p in positions if p.record_name != name] + [record]
        else:
            groups = [g for g in groups if g.record_name != name] + [record]
        retired = [r for r in retired if r.record_name != name] + [RetiredEntry(name, seq, now)]
    trimmed = ArchiveRecord(
        tuple(positions[-limits.max_positions :] if limits.max_positions else ()),
        tuple(groups[-limits.max_groups :] if limits.max_groups else ()),
        tuple(retired[-limits.max_retired :] if limits.max_retired else ()),
    )
    size = len(archive_text(trimmed))
    while size > limits.max_bytes and (trimmed.positions or trimmed.groups):
        # drop from whichever kind has the oldest entry by time, so the archive keeps whole recent cycles
        drop_position = bool(trimmed.positions) and (
            not trimmed.groups or trimmed.positions[0].entry_time <= trimmed.groups[0].created_at
        )
        if drop_position:
            size -= len(_item_text(trimmed.positions[0])) + 1  # its text and a comma
            trimmed = replace(trimmed, positions=trimmed.positions[1:])
        else:
            size -= len(_item_text(trimmed.groups[0])) + 1
            trimmed = replace(trimmed, groups=trimmed.groups[1:])
    return trimmed


_ITEM_TEXTS: Dict[int, Tuple[object, str]] = {}
_ITEM_TEXTS_LIMIT = 1024  # far above what one archive holds; cleared when full


def _item_text(item: object) -> str:
    """The canonical text of one archived item, remembered by identity: an archive is rebuilt from the previous
    one's tuples on every retire, so each item is encoded once while it stays archived."""
    hit = _ITEM_TEXTS.get(id(item))
    if hit is not None and hit[0] is item:
        return hit[1]
    text = record_json(item)
    if len(_ITEM_TEXTS) >= _ITEM_TEXTS_LIMIT:
        _ITEM_TEXTS.clear()
    _ITEM_TEXTS[id(item)] = (item, text)
    return text


def archive_text(archive: ArchiveRecord) -> str:
    """canonical_json(to_body(archive)), assembled from the items' remembered texts (keys in sorted order)."""
    groups = ",".join(map(_item_text, archive.groups))
    positions = ",".join(map(_item_text, archive.positions))
    retired = ",".join(map(_item_text, archive.retired))
    return f'{{"groups":[{groups}],"positions":[{positions}],"retired":[{retired}]}}'


__all__ = ["ArchiveLimits", "ArchiveRecord", "RetiredEntry", "archive_text", "archive_with"]
