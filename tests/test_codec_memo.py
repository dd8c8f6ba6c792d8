"""The codec remembers encoded history entries by identity: same bodies as a fresh encode, no skipped checks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from core.records import StrategyState, StrategyStateRecord, TransitionEntry
from persistence.codec import RecordError, to_body

T0 = datetime(2024, 1, 3, 10, 0)


def _record(history: tuple[TransitionEntry, ...]) -> StrategyStateRecord:
    return StrategyStateRecord("lt112", StrategyState.ACTIVE, StrategyState.ENTERING, T0, "filled", history)


def _fresh_copy(entry: TransitionEntry) -> TransitionEntry:
    return TransitionEntry(entry.from_state, entry.to_state, entry.at, str(entry.reason))


def test_reused_entries_encode_exactly_like_fresh_copies() -> None:
    history = tuple(
        TransitionEntry(StrategyState.WAITING, StrategyState.ENTERING, T0.replace(minute=i), f"step {i}")
        for i in range(20)
    )
    first = json.dumps(to_body(_record(history)), sort_keys=True)
    again = json.dumps(to_body(_record(history)), sort_keys=True)  # served from the memo
    fresh = json.dumps(to_body(_record(tuple(_fresh_copy(e) for e in history))), sort_keys=True)
    assert first == again == fresh


def test_an_equal_but_wrongly_typed_entry_is_still_refused() -> None:
    good = TransitionEntry(StrategyState.WAITING, StrategyState.ENTERING, T0, "entry")
    to_body(_record((good,)))
    bad = replace(good, reason=12345)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="reason"):
        to_body(_record((good, bad)))


def test_a_new_entry_object_with_new_content_is_encoded_not_confused_with_an_old_one() -> None:
    one = TransitionEntry(StrategyState.WAITING, StrategyState.ENTERING, T0, "first")
    two = TransitionEntry(StrategyState.ENTERING, StrategyState.ACTIVE, T0, "second")
    bodies = to_body(_record((one, two)))["history"]
    assert [b["reason"] for b in bodies] == ["first", "second"]
