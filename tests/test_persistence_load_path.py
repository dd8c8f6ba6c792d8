"""The fast start-up path (issue 12): what it skips, and that it never accepts more than the full checks do.

- codec: a body with exactly a record's fields decodes through one function generated per record type (from the
  type only, never from stored data); anything that does not fit goes to the reference decoder, so both accept
  and refuse the same bodies with the same result and the same message (property test below, over mutated
  bodies of every record type);
- envelope: a sealed body is parsed by json's scanner directly, exactly as json.loads parses it (property test);
- envelope: `sealed_frame` reads a text exactly as `seal` wrote it, checksum verified, without parsing the body;
  any other text (a changed byte, another layout) gets None and takes the full check;
- loader: of a record's two slots only the newest is verified and parsed; an older slot behind a valid one is
  neither (it is never used as state; a torn or foreign one is still quarantined), and an older slot is
  verified, parsed and checked before use when the newer one is bad;
- store: the load runs with the cyclic garbage collector paused, and restores it as it was; what it built starts
  in the oldest generation.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ports import ListLog
from core.records import (
    AuditEntry,
    AuditRecord,
    BreakerLevel,
    DrawdownPoint,
    RiskDaysRecord,
    RiskRecord,
    StrategyLosses,
    StrategyState,
    StrategyStateRecord,
    TransitionEntry,
)
from persistence import codec, envelope
from persistence.codec import RecordError, canonical_json, from_body, to_body
from persistence.envelope import MAX_SEQ, EnvelopeError, open_envelope, seal, sealed_frame
from persistence.store import StateStore
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.test_persistence_hostile import _repeats
from tests.test_persistence_store import LIVE, T0, _raw, group, position

# -- codec: fast path == reference path --------------------------------------------------------------------------

SAMPLES: List[Any] = [
    replace(group("g1"), decision="why", profit_target=150.0, max_loss=300.0, credit_symbols=("a", "b")),
    position(),
    RiskRecord(
        100_000.0,
        2,
        10.0,
        T0.date(),
        0.5,
        BreakerLevel.HALVE,
        T0,
        ("p1", "p2"),
        T0,
        strategy_losses=(StrategyLosses("lt112", 1, 0.0, None),),
    ),
    StrategyStateRecord(
        "lt112",
        StrategyState.ACTIVE,
        None,
        T0,
        "r",
        (TransitionEntry(StrategyState.WAITING, StrategyState.ACTIVE, T0, "go"),),
    ),
    RiskDaysRecord("2024-01", (DrawdownPoint(T0.date(), 1.0, 0.1),)),
    AuditRecord((AuditEntry(T0, "fill", "m", "r"),)),
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "P", "CALL", "OPEN", "2024-01-19", "2024-01-19T15:00:00", "1.5", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "symbol", "x"]), inner),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> List[tuple[Any, ...]]:
    """Every place in a body where a value sits (object fields and list items), nested ones included."""
    found: List[tuple[Any, ...]] = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*path, index)))
    return found


def _mutated(body: Dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> Dict[str, Any]:
    copy = json.loads(json.dumps(body))
    *parents, last = path
    holder = copy
    for step in parents:
        holder = holder[step]
    if action == "delete" and isinstance(holder, dict):
        del holder[last]
    elif action == "add" and isinstance(holder, dict):
        holder["extra_field"] = value
    else:
        holder[last] = value
    return copy


def _outcome(cls: type, body: Dict[str, Any]) -> str:
    try:
        return "ok " + repr(from_body(cls, body))
    except RecordError as error:
        return "refused " + str(error)


def _reference_outcome(cls: type, body: Dict[str, Any]) -> str:
    """The same decoding with the fast path switched off (every decoder rebuilt without it)."""
    fast = codec._fast_decoder
    codec._fast_decoder = lambda *_: None  # type: ignore[assignment, return-value]
    codec._decoder.cache_clear()
    try:
        return _outcome(cls, body)
    finally:
        codec._fast_decoder = fast  # type: ignore[assignment]
        codec._decoder.cache_clear()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_decoding_accepts_and_refuses_exactly_what_the_reference_decoder_does(data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(SAMPLES))
    body = json.loads(canonical_json(to_body(record)))
    path = data.draw(st.sampled_from(_paths(body)))
    action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    mutated = _mutated(body, path, action, data.draw(JSON_VALUES))
    cls = type(record)
    assert _outcome(cls, mutated) == _reference_outcome(cls, mutated)
    assert _outcome(cls, body) == "ok " + repr(record)


def test_a_value_that_only_compares_equal_is_not_taken_for_the_right_type() -> None:
    body = json.loads(canonical_json(to_body(group("g1"))))
    for field, value in (("quantity", -2.0), ("quantity", True), ("right", 1), ("strike", True), ("expiry", 20240119)):
        leg = {**body["legs"][0], field: value}
        outcome = _outcome(type(group("g1")), {**body, "legs": [leg]})
        assert outcome.startswith(f"refused OrderGroupRecord.legs[0].{field}"), outcome


def test_the_generated_decoder_is_built_from_the_record_type_only() -> None:
    cls = type(group("g1"))
    before = codec.decoder_source(cls)
    body = json.loads(canonical_json(to_body(group("g1"))))
    hostile = {**body, "group_id": "__import__('os').system('x')", "run_id": "')\nimport os\n"}
    assert from_body(cls, hostile).group_id == hostile["group_id"]  # stored text is a value, never code
    assert codec.decoder_source(cls) == before and "import" not in before
    assert all(before.count(f"raw[{field!r}]") == 1 for field in body)  # each field read once, by its own name


# -- envelope: the sealed frame ---------------------------------------------------------------------------------


def test_sealed_frame_reads_a_sealed_text_and_refuses_any_changed_byte() -> None:
    text = _raw("order_group", 3, 7, to_body(group("g1")))
    frame = sealed_frame(text.encode())
    assert frame is not None and (frame[1], frame[2], frame[0]) == ("order_group", 3, 7)
    assert envelope.open_sealed(text.encode(), frame) == open_envelope(text)
    saved_at = range(text.index('"saved_at":'), text.index(',"schema":'))  # informational, not checksummed
    for index in (i for i in range(0, len(text), 7) if i not in saved_at):  # any other changed character: no
        changed = text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]
        assert sealed_frame(changed.encode()) is None, index  # frame (the full check says why)
    respaced = json.dumps(json.loads(text), indent=1)
    assert sealed_frame(respaced.encode()) is None and open_envelope(respaced).seq == 7  # same JSON: the full path
    assert sealed_frame(seal("risk", 1, MAX_SEQ + 1, "t", "{}").encode()) is None
    assert sealed_frame(seal("risk", 1, 1, 'needs "escaping"', "{}").encode()) is None
    body = canonical_json(to_body(group("g1"))).encode().replace(b'"run"', b'"r\xffn"')  # not UTF-8
    checksum = hashlib.sha256(b"order_group\n3\n7\n" + body).hexdigest().encode()  # sealed by hand: it fits
    resealed = b'{"body":' + body + b',"checksum":"' + checksum + b'","saved_at":"t","schema":"order_group",'
    resealed += b'"seq":7,"version":3}'
    frame = sealed_frame(resealed)
    assert frame is not None
    with pytest.raises(EnvelopeError, match="not UTF-8"):
        envelope.open_sealed(resealed, frame)


def _parse_outcome(parse: Callable[[str], Any], text: str) -> tuple[Any, ...]:
    try:
        return ("ok", repr(parse(text)))
    except (ValueError, RecursionError) as error:
        return ("error", type(error).__name__, str(error))


JSON_TEXTS = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.text(alphabet='{}[]",: 0123456789.eE-+truefalsnNIiy\\\t\n', max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(JSON_TEXTS, st.sampled_from(["", " ", "\n", "x", "}", "1"]), st.sampled_from(["", " ", "\t"]))
def test_sealed_bodies_are_parsed_exactly_as_json_loads_parses_them(text: str, after: str, before: str) -> None:
    padded = before + text + after
    assert _parse_outcome(envelope.parse_json, padded) == _parse_outcome(json.loads, padded)


def test_sealed_frame_pattern_cannot_backtrack() -> None:
    assert set(_repeats(envelope._SEALED_TAIL.pattern)) <= {"possessive", "optional"}


# -- loader: which slots are parsed ------------------------------------------------------------------------------


def _store_with_two_slots() -> SimulatedObjectStore:
    """group-g1 saved twice: slot a holds seq 1 (decision "first"), slot b seq 2 (decision None)."""
    state = StateStore(SimulatedStorePort(SimulatedObjectStore()), LIVE, lambda: T0, ListLog())
    state.load_all()
    for decision in ("first", None):
        state.put(replace(group("g1"), decision=decision))
        state.flush()
    state.save_dirty()
    state.flush()
    return state.port.store  # type: ignore[attr-defined, no-any-return]


def _load(disk: SimulatedObjectStore) -> tuple[StateStore, Any]:
    state = StateStore(SimulatedStorePort(SimulatedObjectStore(disk=disk.disk)), LIVE, lambda: T0, ListLog())
    return state, state.load_all()


def _impossible_group(seq: int) -> bytes:
    leg = replace(group("g1").legs[0], filled_quantity=5)  # filled +5 of an order for -2: sealed, impossible
    return _raw("order_group", 3, seq, to_body(replace(group("g1"), legs=(leg,)))).encode()


def _counting_loads(calls: List[str]) -> Callable[..., Any]:
    original = json.loads

    def loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(text if isinstance(text, str) else text.decode())
        return original(text, *args, **kwargs)

    return loads


def test_an_older_sealed_slot_behind_a_valid_one_is_not_parsed() -> None:
    disk = _store_with_two_slots()
    older = LIVE.record_key("group-g1", "a")
    disk.save_bytes(older, _impossible_group(1))  # sealed by hand: a valid checksum, an impossible body
    disk.flush()
    parsed: List[str] = []
    original, original_parse = envelope.json.loads, envelope.parse_json
    envelope.json.loads = _counting_loads(parsed)  # type: ignore[assignment]
    envelope.parse_json = _counting_loads(parsed)  # what sealed bodies are parsed with
    try:
        state, loaded = _load(disk)
    finally:
        envelope.json.loads = original  # type: ignore[assignment]
        envelope.parse_json = original_parse
    assert any('"decision":null' in text for text in parsed)  # the counting saw the newer body parsed
    assert loaded.groups["g1"].decision is None and loaded.seqs["group-g1"] == 2
    assert loaded.quarantined == []  # never used as state, so not parsed (before: parsed and quarantined)
    assert not any('"filled_quantity":5' in text for text in parsed)
    assert state.put(replace(group("g1"), decision="next")) and state.flush()  # the next save replaces it
    assert b'"filled_quantity":5' not in SimulatedObjectStore(disk=disk.disk).read_bytes(older)


def test_an_older_slot_is_parsed_and_checked_when_the_newer_is_bad() -> None:
    disk = _store_with_two_slots()
    disk.save_bytes(LIVE.record_key("group-g1", "a"), _impossible_group(1))
    disk.save_bytes(LIVE.record_key("group-g1", "b"), _impossible_group(2))
    disk.flush()
    _, loaded = _load(disk)
    assert "g1" not in loaded.groups  # neither impossible version is loaded
    assert {entry.key for entry in loaded.quarantined} == {LIVE.record_key("group-g1", s) for s in "ab"}


def test_a_damaged_older_slot_behind_a_valid_one_is_not_state_and_the_next_save_replaces_it() -> None:
    """Bit rot in the body of the older slot, its tail intact: that slot is never used as state, so its checksum
    is not verified and it is not reported (it was quarantined before the start-up path read older slots by
    their tail only); the next save of the record overwrites it."""
    disk = _store_with_two_slots()
    older = LIVE.record_key("group-g1", "a")
    damaged = disk.read_bytes(older).replace(b'"first"', b'"fiRst"')  # bit rot: the checksum no longer fits
    disk.save_bytes(older, damaged)
    disk.flush()
    state, loaded = _load(disk)
    assert loaded.groups["g1"].decision is None and loaded.seqs["group-g1"] == 2 and loaded.quarantined == []
    assert state.put(replace(group("g1"), decision="next")) and state.flush()
    assert b'"fiRst"' not in SimulatedObjectStore(disk=disk.disk).read_bytes(older)
    _, again = _load(disk)
    assert again.groups["g1"].decision == "next" and again.seqs["group-g1"] == 3


def test_a_damaged_newer_slot_is_quarantined_and_the_older_is_verified_before_use() -> None:
    disk = _store_with_two_slots()
    newer, older = (LIVE.record_key("group-g1", slot) for slot in "ba")
    disk.save_bytes(newer, disk.read_bytes(newer).replace(b'"run_id":"', b'"run_id":"X'))  # tail intact, seq 2
    disk.flush()
    _, loaded = _load(disk)
    assert loaded.groups["g1"].decision == "first" and loaded.seqs["group-g1"] == 1  # the verified older one
    (entry,) = loaded.quarantined
    assert entry.key == newer and "bad checksum" in entry.reason
    # both damaged: the older is verified once the newer failed, and nothing unverified is loaded
    disk.save_bytes(older, disk.read_bytes(older).replace(b'"first"', b'"fiRst"'))
    disk.flush()
    _, loaded = _load(disk)
    assert "g1" not in loaded.groups and loaded.lost == ["group-g1"]
    assert {entry.key for entry in loaded.quarantined} == {newer, older}
    assert all("bad checksum" in entry.reason for entry in loaded.quarantined)


def test_a_torn_or_foreign_older_slot_is_still_quarantined() -> None:
    """Only an intact tail lets an older slot go unread: a torn (truncated) value, or a foreign one, is opened and
    quarantined whatever its age."""
    for damage in ("torn", "foreign"):
        disk = _store_with_two_slots()
        older = LIVE.record_key("group-g1", "a")
        text = disk.read_bytes(older)
        disk.save_bytes(older, text[: len(text) // 2] if damage == "torn" else b'{"body":{},"note":"research"}')
        disk.flush()
        _, loaded = _load(disk)
        assert loaded.groups["g1"].decision is None and loaded.seqs["group-g1"] == 2
        assert [entry.key for entry in loaded.quarantined] == [older]


def test_the_newer_sealed_slot_wins_whatever_the_slot_order() -> None:
    disk = _store_with_two_slots()
    a, b = (LIVE.record_key("group-g1", slot) for slot in "ab")
    text_a, text_b = disk.read_bytes(a), disk.read_bytes(b)
    disk.save_bytes(a, text_b)  # swap: the newer version now sits in slot a
    disk.save_bytes(b, text_a)
    disk.flush()
    _, loaded = _load(disk)
    assert loaded.groups["g1"].decision is None and loaded.seqs["group-g1"] == 2 and loaded.quarantined == []


# -- store: the collector is paused for the load only --------------------------------------------------------------


class _WatchingPort(SimulatedStorePort):
    """Remembers whether the cyclic GC was enabled while the load listed the keys."""

    def __init__(self, store: SimulatedObjectStore) -> None:
        super().__init__(store)
        self.gc_during_load: List[bool] = []

    def keys(self) -> List[str]:
        self.gc_during_load.append(gc.isenabled())
        return super().keys()


def test_the_load_pauses_the_cyclic_gc_and_restores_it_as_it_was() -> None:
    disk = _store_with_two_slots()
    for enabled in (True, False):
        port = _WatchingPort(SimulatedObjectStore(disk=disk.disk))
        (gc.enable if enabled else gc.disable)()
        try:
            StateStore(port, LIVE, lambda: T0, ListLog()).load_all()
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
        assert port.gc_during_load == [False]


def test_what_the_load_built_starts_in_the_oldest_generation_and_a_host_freeze_is_kept() -> None:
    """No young-generation scan of the loaded records right after the load (a tenth of a large load's time):
    they are moved to the oldest generation at once; a freeze the host process made stays as it was."""
    disk = _store_with_two_slots()
    gc.collect()
    _, loaded = _load(disk)
    record = loaded.groups["g1"]
    oldest = {id(obj) for obj in gc.get_objects(generation=2)}
    assert id(record) in oldest and id(record.legs) in oldest and gc.get_freeze_count() == 0
    marker: List[Any] = [record]  # an object the host process freezes
    gc.freeze()
    try:
        _, again = _load(disk)
        assert again.groups["g1"] == record and gc.get_freeze_count() > 0
        assert all(obj is not marker for obj in gc.get_objects())  # still frozen: in no generation
    finally:
        gc.unfreeze()


# -- store: what a save stamps ---------------------------------------------------------------------------------


def test_each_save_is_stamped_with_the_clock_of_that_save() -> None:
    """saved_at is formatted once per distinct time (several records save at one bar's time), never stale."""
    times = [T0, T0, T0 + timedelta(minutes=1), (T0 + timedelta(minutes=1)).replace(tzinfo=UTC)]
    now = [T0]
    port = SimulatedStorePort(SimulatedObjectStore())
    state = StateStore(port, LIVE, lambda: now[0], ListLog())
    state.load_all()
    stamps = []
    for index, moment in enumerate(times):
        now[0] = moment
        state.put(replace(group("g1"), decision=f"v{index}"))
        slot = state._slots["group-g1"].slot
        stamps.append(json.loads(port.store.read_bytes(LIVE.record_key("group-g1", slot)))["saved_at"])
        state.flush()
    assert stamps == [moment.isoformat() for moment in times]
