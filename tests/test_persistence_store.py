"""StateStore behaviour: namespaces, dirty tracking, checked saves, quarantine, migration, bounds, retire."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import List, Optional

import pytest

from core.ports import ListLog
from core.records import (
    BreakerLevel,
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    OrderGroupRecord,
    PositionRecord,
    Right,
    RiskRecord,
    StrategyState,
    StrategyStateRecord,
)
from persistence.archive import ArchiveLimits
from persistence.codec import canonical_json, to_body
from persistence.envelope import seal
from persistence.keys import Namespace
from persistence.loader import LoadResult
from persistence.store import StateStore
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort

T0 = datetime(2024, 1, 2, 15, 0)
LIVE = Namespace.for_run("-123456789", True, "L-1", "")
BACKTEST = Namespace.for_run("-123456789", False, "1111", "")


class Clocks:
    def __init__(self) -> None:
        self.now = T0
        self.wall = 0.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.wall += seconds


def strategy(reason: str = "start", state: StrategyState = StrategyState.WAITING) -> StrategyStateRecord:
    return StrategyStateRecord("lt112", state, None, T0, reason)


def group(group_id: str = "g1", status: GroupStatus = GroupStatus.PENDING) -> OrderGroupRecord:
    leg = LegRecord("SPY-20240119-P-400", "SPY", Right.PUT, 400.0, date(2024, 1, 19), -2)
    return OrderGroupRecord(group_id, "lt112", GroupPurpose.ENTRY, "p-" + group_id, (leg,), status, T0, T0, "run")


def position(position_id: str = "p-g1") -> PositionRecord:
    contract = ContractRecord("SPY-20240119-P-400", Right.PUT, 400.0, date(2024, 1, 19), -2)
    return PositionRecord(
        position_id, "lt112", "g1", T0, -1.5, (contract,), date(2024, 1, 19), (400.0,), 14.0, 150.0, 300.0, "abc"
    )


def risk() -> RiskRecord:
    return RiskRecord(100_000.0, 0, 0.0, None, 0.0, BreakerLevel.NONE, None, (), T0)


def make(
    disk: Optional[SimulatedObjectStore] = None, namespace: Namespace = LIVE, **options: object
) -> tuple[StateStore, SimulatedObjectStore, SimulatedStorePort, ListLog, Clocks]:
    store = disk or SimulatedObjectStore()
    port = SimulatedStorePort(store)
    log = ListLog()
    clocks = Clocks()
    state = StateStore(port, namespace, lambda: clocks.now, log, wall_clock=lambda: clocks.wall, **options)  # type: ignore[arg-type]
    return state, store, port, log, clocks


def restart(store: SimulatedObjectStore, namespace: Namespace = LIVE) -> tuple[StateStore, ListLog, LoadResult]:
    state, _, _, log, _ = make(store.crash(), namespace)
    return state, log, state.load_all()


# -- namespaces -------------------------------------------------------------------------------------------------


def test_a_backtest_never_loads_another_runs_or_lives_state_and_resume_does() -> None:
    state, store, _, _, _ = make(namespace=BACKTEST)
    state.load_all()
    state.put(strategy("from run 1111"))
    state.flush()
    other_run, _, _, _, _ = make(store, Namespace.for_run("-123456789", False, "2222", ""))
    assert other_run.load_all().strategies == {}
    live, _, _, _, _ = make(store, LIVE)
    assert live.load_all().strategies == {}
    resumed, _, _, _, _ = make(store, Namespace.for_run("-123456789", False, "2222", "1111"))
    assert resumed.load_all().strategies["lt112"].reason == "from run 1111"


# -- dirty tracking -----------------------------------------------------------------------------------------------


def test_idle_scheduled_save_makes_no_port_call_and_unchanged_put_writes_nothing() -> None:
    state, _, port, _, _ = make()
    state.load_all()
    assert state.put(strategy()) is True
    assert state.save_dirty() == 1  # the manifest
    calls = sum(port.calls.values())
    assert state.save_dirty() == 0
    assert state.put(strategy()) is True  # equal record: nothing to write
    assert state.save_dirty() == 0
    assert sum(port.calls.values()) == calls


def test_not_immediate_puts_are_written_by_the_next_save_dirty_only_what_changed() -> None:
    state, store, port, _, _ = make()
    state.load_all()
    state.put(group("g1"), immediate=False)
    state.put(group("g2"), immediate=False)
    assert port.calls["save"] == 0
    assert state.save_dirty() == 3  # two groups + manifest
    state.put(group("g2", GroupStatus.SUBMITTED), immediate=False)
    saves = port.calls["save"]
    assert state.save_dirty() == 2  # g2 + manifest, g1 untouched
    assert port.calls["save"] == saves + 2
    store.flush()
    loaded = restart(store)[2]
    assert loaded.groups["g2"].status == GroupStatus.SUBMITTED


def test_a_transition_saves_at_once() -> None:
    state, store, _, _, _ = make()
    state.load_all()
    assert state.put(strategy("entering", StrategyState.ENTERING)) is True
    assert any("strategy-lt112" in key for key in store.pending_keys())


# -- saves that fail ------------------------------------------------------------------------------------------------


def test_false_from_save_is_logged_audited_kept_dirty_and_retried() -> None:
    state, store, port, log, _ = make(SimulatedObjectStore(max_files=0))
    state.load_all()
    assert state.put(strategy("entering", StrategyState.ENTERING)) is False
    assert any("STATE SAVE FAILED" in message and "strategy-lt112" in message for message in log.errors)
    assert "strategy-lt112" in state.failed_names and "strategy-lt112" in state.dirty_names
    audit = state.get("audit")
    assert audit is not None and audit.entries[-1].kind == "save-failed"  # type: ignore[union-attr]
    assert state.save_dirty() == 0  # still over quota: retried, still failing
    store.max_files = 100
    assert state.put(group("g1")) is True  # the next put retries the failed record too
    assert "strategy-lt112" not in state.dirty_names
    assert state.save_dirty() >= 1  # audit + manifest
    store.flush()
    loaded = restart(store)[2]
    assert loaded.strategies["lt112"].reason == "entering"
    assert [e.kind for e in loaded.audit.entries] == ["save-failed"]
    assert port.calls["save"] > 3


def test_a_raising_store_is_treated_like_false() -> None:
    state, store, _, log, _ = make()
    state.load_all()

    def refuse(event: str, key: str) -> None:
        raise PermissionError("storage create permission missing")

    store.hooks.append(refuse)
    assert state.put(strategy()) is False
    assert any("PermissionError" in message for message in log.errors)


def test_an_invalid_record_is_refused_loudly_without_raising() -> None:
    state, _, _, log, _ = make()
    state.load_all()
    assert state.put(replace(position(), entry_price=float("inf"))) is False
    assert any("not a valid position record" in message for message in log.errors)


# -- quarantine ----------------------------------------------------------------------------------------------------


def _saved_store() -> SimulatedObjectStore:
    state, store, _, _, _ = make()
    state.load_all()
    state.put(strategy("good"))
    state.put(group("g1"))
    state.save_dirty()
    state.flush()
    return store


def _raw(schema: str, version: int, seq: int, body: dict[str, object]) -> str:
    return seal(schema, version, seq, "2024-01-02T15:00:00", canonical_json(body))


BAD_VALUES = {
    "newer version": (lambda: _raw("risk", 99, 1, to_body(risk())), "newer than this code"),
    "bad checksum": (lambda: _raw("risk", 1, 1, to_body(risk())).replace("100000.0", "900000.0"), "bad checksum"),
    "truncated": (lambda: _raw("risk", 1, 1, to_body(risk()))[:40], "not JSON"),
    "not json": (lambda: "hello", "not JSON"),
    "empty": (lambda: "", "empty"),
    "schema mismatch": (lambda: _raw("position", 2, 1, to_body(position())), "does not match the key"),
    "forbidden field": (lambda: _raw("risk", 1, 1, {**to_body(risk()), "buying_power": 1.0}), "derived field"),
    "unknown field": (lambda: _raw("risk", 1, 1, {**to_body(risk()), "color": "red"}), "unknown field"),
}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_bad_stored_values_are_quarantined_and_loading_goes_on(kind: str) -> None:
    store = _saved_store()
    make_text, reason = BAD_VALUES[kind]
    bad_key = LIVE.record_key("risk", "a")
    store.save(bad_key, make_text())
    store.flush()
    state, log, loaded = restart(store)
    assert loaded.strategies["lt112"].reason == "good"
    assert loaded.groups["g1"].group_id == "g1"
    assert loaded.risk is None
    [entry] = loaded.quarantined
    assert entry.key == bad_key and reason in entry.reason
    assert entry.quarantine_key is not None and LIVE.owns(entry.quarantine_key)
    assert state.flush() is True
    restarted = SimulatedObjectStore(disk=store.disk)
    assert restarted.read(entry.quarantine_key) == make_text()  # an exact copy ...
    assert restarted.read(bad_key) == make_text()  # ... and the original is not deleted
    assert any(bad_key in message and reason in message for message in log.errors)


def test_a_foreign_key_and_a_record_under_the_wrong_name_are_quarantined() -> None:
    store = _saved_store()
    store.save(LIVE.key("notes.txt"), "someone else's file")
    g2_key = LIVE.record_key("group-g2", "a")
    store.save(g2_key, _raw("order_group", 1, 1, to_body(group("g1"))))
    store.save("crashsafe/-123456789/backtest/9/notes.txt", "not under our namespace: ignored")
    store.flush()
    loaded = restart(store)[2]
    reasons = {entry.key: entry.reason for entry in loaded.quarantined}
    assert "foreign key" in reasons[LIVE.key("notes.txt")]
    assert "names itself 'group-g1'" in reasons[g2_key]
    assert set(loaded.groups) == {"g1"}
    assert len(reasons) == 2


def test_quarantining_the_same_bytes_twice_makes_one_copy() -> None:
    store = _saved_store()
    store.save(LIVE.record_key("risk", "a"), "garbage")
    store.flush()
    first = restart(store)
    first[0].flush()
    second_disk = SimulatedObjectStore(disk=store.disk)
    files = second_disk.disk_files()
    second = restart(second_disk)
    assert first[2].quarantined[0].quarantine_key == second[2].quarantined[0].quarantine_key
    assert SimulatedObjectStore(disk=store.disk).disk_files() == files


def test_load_all_never_raises_when_the_store_itself_fails() -> None:
    class Broken(SimulatedStorePort):
        def keys(self) -> List[str]:
            raise OSError("disk gone")

    log = ListLog()
    state = StateStore(Broken(SimulatedObjectStore()), LIVE, lambda: T0, log)
    loaded = state.load_all()
    assert loaded.strategies == {} and "STATE LOAD FAILED" in log.errors[0]


# -- migration -----------------------------------------------------------------------------------------------------


def test_older_schema_versions_load_through_the_upgrade_steps() -> None:
    store = SimulatedObjectStore()
    v1_strategy = {k: v for k, v in to_body(strategy("old")).items() if k != "last_entry_day"}
    v1_strategy["last_entry"] = "2024-01-02T15:31:00"
    store.save(LIVE.record_key("strategy-lt112", "a"), _raw("strategy_state", 1, 3, v1_strategy))
    v1_position = {k: v for k, v in to_body(position()).items() if k != "params_hash"}
    store.save(LIVE.record_key("position-p-g1", "b"), _raw("position", 1, 1, v1_position))
    store.flush()
    state, _log, loaded = restart(store)
    assert loaded.strategies["lt112"].last_entry_day == date(2024, 1, 2)
    migrated_position = loaded.positions["p-g1"]
    assert migrated_position.params_hash == "" and "migrated from position v1" in migrated_position.note
    assert sorted(loaded.migrated) == ["position-p-g1", "strategy-lt112"]
    assert loaded.quarantined == []
    state.put(replace(loaded.strategies["lt112"], reason="new"))
    state.flush()
    rewritten = json.loads(SimulatedObjectStore(disk=store.disk).read(LIVE.record_key("strategy-lt112", "b")))
    assert rewritten["version"] == 2 and rewritten["seq"] == 4


# -- bounds and retire ---------------------------------------------------------------------------------------------


def test_audit_trail_is_bounded_by_count_and_bytes() -> None:
    state, _, _, _, _ = make(audit_max_entries=50, audit_max_bytes=4000)
    state.load_all()
    for index in range(500):
        state.audit("note", f"message {index} " + "x" * 40, "ref")
    entries = state.get("audit").entries  # type: ignore[union-attr]
    assert 1 <= len(entries) <= 50
    assert entries[-1].message.startswith("message 499")
    assert len(canonical_json(to_body(state.get("audit")))) < 4000 + 2000
    state.audit("long", "y" * 10_000)
    assert len(state.get("audit").entries[-1].message) == 400  # type: ignore[union-attr]


def test_retire_archives_then_deletes_slots_only_after_the_archive_is_on_disk() -> None:
    state, store, _, _, _clocks = make()
    state.load_all()
    state.put(group("g1", GroupStatus.FILLED))
    state.put(position())
    state.save_dirty()
    state.flush()
    slot_keys = [LIVE.record_key(name, slot) for name in ("group-g1", "position-p-g1") for slot in "ab"]
    assert state.retire("group-g1", "position-p-g1") is True
    assert any(store.contains_key(key) for key in slot_keys)  # archive not on disk yet: nothing deleted
    state.save_dirty()
    assert any(store.contains_key(key) for key in slot_keys)
    crashed_early = restart(SimulatedObjectStore(disk=store.disk))[2]
    assert "g1" in crashed_early.groups  # still live: archive never reached disk
    assert state.flush() is True
    assert not any(store.contains_key(key) for key in slot_keys)
    loaded = restart(store)[2]
    assert loaded.groups == {} and loaded.positions == {}
    assert loaded.archived_groups["g1"].status == GroupStatus.FILLED
    assert "p-g1" in loaded.archived_positions and loaded.lost == []


def test_without_a_flush_retire_deletes_a_minute_after_the_archive_save() -> None:
    store = SimulatedObjectStore()
    port = SimulatedStorePort(store, flush_supported=False)  # QC Cloud: flush() cannot promise anything
    clocks = Clocks()
    state = StateStore(port, LIVE, lambda: clocks.now, ListLog(), wall_clock=lambda: clocks.wall)
    state.load_all()
    state.put(group("g1", GroupStatus.FILLED))
    state.retire("group-g1")
    clocks.advance(30)
    state.save_dirty()
    assert store.contains_key(LIVE.record_key("group-g1", "a"))
    clocks.advance(31)
    store.flush()  # LEAN's own timer ran long ago
    state.save_dirty()
    assert not store.contains_key(LIVE.record_key("group-g1", "a"))


def test_leftover_slots_of_a_retired_record_are_not_loaded_as_live_and_are_deleted() -> None:
    state, store, _, _, _ = make()
    state.load_all()
    state.put(group("g1", GroupStatus.FILLED))
    state.save_dirty()
    state.flush()
    state.retire("group-g1")
    store.flush()  # the archive reaches disk, then the process dies before the deletes
    _state2, _, loaded = restart(store)
    assert loaded.groups == {} and "g1" in loaded.archived_groups
    assert loaded.retired_leftovers == [LIVE.record_key("group-g1", "a")]
    assert not SimulatedObjectStore(disk=store.disk).contains_key(LIVE.record_key("group-g1", "a"))


def test_archive_is_bounded() -> None:
    limits = ArchiveLimits(max_positions=3, max_groups=5, max_retired=10, max_bytes=100_000)
    state, _, _, _, _ = make(archive_limits=limits)
    state.load_all()
    for index in range(20):
        state.put(group(f"g{index}", GroupStatus.FILLED))
        state.put(position(f"p{index}"))
        state.retire(f"group-g{index}", f"position-p{index}")
        state.flush()
    archive = state.get("archive")
    assert [p.position_id for p in archive.positions] == ["p17", "p18", "p19"]  # type: ignore[union-attr]
    assert len(archive.groups) == 5 and len(archive.retired) == 10  # type: ignore[union-attr]
    small = ArchiveLimits(max_bytes=2_000)
    state2, _, _, _, _ = make(archive_limits=small)
    state2.load_all()
    for index in range(20):
        state2.put(group(f"g{index}", GroupStatus.FILLED))
        state2.retire(f"group-g{index}")
    assert len(canonical_json(to_body(state2.get("archive")))) <= 2_000 + 1_000  # retired list remains


def test_retire_refuses_records_that_live_for_the_whole_run() -> None:
    state, _, _, log, _ = make()
    state.load_all()
    state.put(strategy())
    assert state.retire("strategy-lt112") is False
    assert state.get("strategy-lt112") is not None and "RETIRE REFUSED" in log.errors[0]
