"""Hostile stored state (issue 11): every kind of bad value in the ObjectStore, one table, the same promises.

For every case the test plants a bad value next to good records and checks that
- the load finishes with bounded work (each stored key read at most once; nothing parsed past the size and
  depth limits of persistence/bounds.py; no retry of the load by later saves);
- the good records load and the store keeps saving (the next puts are stored and read back);
- the original bad value is still there, byte for byte, after those saves;
- the finding is logged once: one line naming the key, and not again on the next restart;
- nothing impossible is loaded, so nothing can size an order from it.
"""

from __future__ import annotations

import base64
import json
import re
import re._parser as parser  # the parser behind re.compile (3.11)
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Callable, Dict, List, Optional

import pytest

from core.params import Params
from core.ports import ListLog
from core.records import GroupStatus, LegRecord, LegStatus
from engine.limits import record_limits
from persistence import bounds
from persistence.bounds import MAX_NESTING, MAX_VALUE_CHARS, nesting_depth
from persistence.codec import canonical_json, to_body
from persistence.envelope import checksum_of, seal
from persistence.keys import Namespace
from persistence.loader import load_namespace
from persistence.migrations import _V1_PLAN_NOTE
from persistence.quarantine import QuarantineBudget
from persistence.store import StateStore
from persistence.validation import RecordLimits, check_record, record_check
from strategies import default_strategies
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.test_persistence_store import LIVE, T0, _raw, group, position, risk, strategy

DEEP = "[" * 100_000 + "]" * 100_000


def _sealed_text(schema: str, version: int, seq: int, body_text: str) -> str:
    """An envelope around any body text, with a checksum that matches it (what a hand edit can produce)."""
    return seal(schema, version, seq, "2024-01-02T15:00:00", body_text)


def _leg(**changes: Any) -> LegRecord:
    return replace(group("g2").legs[0], **changes)


def _group_with(*legs: LegRecord, **changes: Any) -> str:
    record = replace(group("g2"), legs=legs, **changes)
    return _raw("order_group", 2, 9, to_body(record))


def _v1_group(decision: str) -> str:
    body = {k: v for k, v in to_body(group("g2")).items() if k not in ("profit_target", "max_loss", "entry_vix")}
    return _raw("order_group", 1, 9, {**body, "decision": decision})


@dataclass(frozen=True)
class Case:
    key: str  # where the bad value goes
    value: Callable[[], bytes]
    outcome: str  # "quarantined", "repaired" (loads through an upgrade) or "rejected" (listed, never read)
    reason: str = ""  # part of the logged reason
    gone: str = ""  # record name that must not load from the bad value


RISK_A = LIVE.record_key("risk", "a")
G1_B = LIVE.record_key("group-g1", "b")  # the older slot of a loaded record
G2_A = LIVE.record_key("group-g2", "a")
MANIFEST_B = LIVE.manifest_key("b")


def _text(make: Callable[[], str]) -> Callable[[], bytes]:
    return lambda: make().encode("utf-8")


CASES: Dict[str, Case] = {
    # already handled before issue 11 (the new promises still apply)
    "invalid json": Case(RISK_A, _text(lambda: "hello"), "quarantined", "not JSON", "risk"),
    "wrong shape": Case(RISK_A, _text(lambda: "[1, 2]"), "quarantined", "not an envelope", "risk"),
    "wrong type": Case(
        RISK_A,
        _text(lambda: _raw("risk", 1, 1, {**to_body(risk()), "peak_equity": "lots"})),
        "quarantined",
        "peak_equity",
        "risk",
    ),
    "bad checksum": Case(
        RISK_A, _text(lambda: _raw("risk", 1, 1, to_body(risk())).replace("100000.0", "9.0")), "quarantined"
    ),
    "nan": Case(
        RISK_A,
        _text(lambda: _sealed_text("risk", 1, 1, canonical_json(to_body(risk())).replace("100000.0", "NaN"))),
        "quarantined",
        "expected a number",
        "risk",
    ),
    "huge junk": Case(RISK_A, lambda: b"x" * (MAX_VALUE_CHARS + 1), "quarantined", "not parsed", "risk"),
    "bad key": Case(LIVE.key("notes/other project.txt"), lambda: b"someone else's", "rejected", "foreign key"),
    "version 999": Case(
        RISK_A, _text(lambda: _raw("risk", 999, 1, to_body(risk()))), "quarantined", "newer than this code", "risk"
    ),
    "unknown enum": Case(
        G2_A,
        _text(lambda: _raw("order_group", 2, 1, {**to_body(group("g2")), "status": "EXPLODED"})),
        "quarantined",
        "EXPLODED",
        "group-g2",
    ),
    # issue 11
    "deep nesting": Case(RISK_A, _text(lambda: DEEP), "quarantined", "nested deeper", "risk"),
    "deep nesting, older slot": Case(G1_B, _text(lambda: DEEP), "quarantined", "nested deeper"),
    "deep nesting, manifest": Case(MANIFEST_B, _text(lambda: DEEP), "quarantined", "nested deeper"),
    "deep nesting inside a body": Case(
        RISK_A,
        _text(lambda: _sealed_text("risk", 1, 1, '{"x":' + DEEP + "}")),
        "quarantined",
        "nested deeper",
        "risk",
    ),
    "unterminated strings": Case(RISK_A, _text(lambda: '["' + '\\"' * 500_000), "quarantined", "not JSON", "risk"),
    "not utf-8": Case(RISK_A, lambda: b'{"body":\xff\xfe\x00junk', "quarantined", "not UTF-8", "risk"),
    "v1 decision of 400,000 spaces": Case(G2_A, _text(lambda: _v1_group(" " * 400_000)), "repaired"),
    "leg filled +5 of -2": Case(
        G2_A, _text(lambda: _group_with(_leg(quantity=-2, filled_quantity=5))), "quarantined", "filled +5", "group-g2"
    ),
    "1,000,000 contracts pending": Case(
        G2_A,
        _text(lambda: _group_with(_leg(quantity=-1_000_000), status=GroupStatus.INCOMPLETE)),
        "quarantined",
        "beyond",
        "group-g2",
    ),
    "order id twice": Case(
        G2_A,
        _text(
            lambda: _group_with(
                _leg(order_ids=(7,)), _leg(symbol="SPY-20240119-P-390", strike=390.0, quantity=2, order_ids=(7,))
            )
        ),
        "quarantined",
        "order id 7",
        "group-g2",
    ),
    "fill booked twice": Case(
        G2_A,
        _text(lambda: _group_with(_leg(filled_quantity=-1, fill_keys=("r/1/1", "r/1/1"), status=LegStatus.FILLED))),
        "quarantined",
        "booked twice",
        "group-g2",
    ),
    "seq beyond 2**53": Case(
        RISK_A, _text(lambda: _raw("risk", 1, 2**60, to_body(risk()))), "quarantined", "seq at most 2**53", "risk"
    ),
    "drawdown 500 %": Case(
        LIVE.record_key("risk-days-01", "a"),
        _text(
            lambda: _raw(
                "risk_days",
                1,
                1,
                {"month": "2024-01", "points": [{"day": "2024-01-02", "equity": 1.0, "drawdown": 5.0}]},
            )
        ),
        "quarantined",
        "fraction",
        "risk-days-01",
    ),
    "position of 0 contracts": Case(
        LIVE.record_key("position-p-g1", "a"),
        _text(lambda: _raw("position", 2, 1, {**to_body(position()), "contracts": [{**_contract(), "quantity": 0}]})),
        "quarantined",
        "quantity 0",
        "position-p-g1",
    ),
}


def _contract() -> Dict[str, Any]:
    contracts: List[Dict[str, Any]] = to_body(position())["contracts"]
    return contracts[0]


def _good_store() -> SimulatedObjectStore:
    state = StateStore(SimulatedStorePort(SimulatedObjectStore()), LIVE, lambda: T0, ListLog())
    state.load_all()
    state.put(strategy("good"))
    for decision in (None, "second version", None):  # slots a, b, a: b is the older slot of g1
        state.put(replace(group("g1"), decision=decision))
        state.flush()
    state.save_dirty()
    state.flush()
    return state.port.store  # type: ignore[attr-defined, no-any-return]


def _open(disk: SimulatedObjectStore) -> tuple[StateStore, SimulatedStorePort, ListLog]:
    port = SimulatedStorePort(SimulatedObjectStore(disk=disk.disk))
    log = ListLog()
    return StateStore(port, LIVE, lambda: T0, log), port, log


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_value(name: str) -> None:
    case = CASES[name]
    disk = _good_store()
    planted = case.value()
    disk.save_bytes(case.key, planted)
    disk.flush()
    ours = [key for key in disk.keys if LIVE.owns(key)]

    state, port, log = _open(disk)
    loaded = state.load_all()
    # bounded: every key read at most once (the foreign key not at all), the index at most once more
    assert port.calls["read_bytes"] + port.calls["read"] <= len(ours) + 1
    assert loaded.strategies["lt112"].reason == "good" and loaded.groups["g1"].decision is None
    names = {q.key for q in loaded.quarantined}
    if case.outcome == "repaired":
        assert names == set() and loaded.migrated == ["group-g2"]
    else:
        assert names == {case.key}
        (entry,) = loaded.quarantined
        assert case.reason in entry.reason
        assert sum(case.key in line for line in log.errors) == 1  # logged once
    if case.gone:
        assert state.get(case.gone) is None

    # it keeps saving (including the record whose slot is bad), and the load is not retried
    for _ in range(3):
        assert state.put(strategy("after")) and state.put(risk()) and state.put(replace(group("g1"), decision="x"))
        assert state.save_dirty() >= 0
    assert state.flush() is True
    assert port.calls["keys"] == 1

    # the original is untouched and the next start loads what was saved, without logging the finding again
    again, _, log2 = _open(disk)
    reloaded = again.load_all()
    assert SimulatedObjectStore(disk=disk.disk).read_bytes(case.key) == planted
    assert reloaded.strategies["lt112"].reason == "after" and reloaded.risk == risk()
    assert reloaded.groups["g1"].decision == "x"
    assert not any(case.key in line for line in log2.errors)
    if case.outcome == "quarantined":
        assert [q.known for q in reloaded.quarantined] == [True]


def test_a_value_that_is_not_utf8_is_copied_as_base64_of_its_exact_bytes() -> None:
    disk = _good_store()
    planted = b"\xff\xfe\x00 not text \x80"
    disk.save_bytes(RISK_A, planted)
    disk.flush()
    state, _, _ = _open(disk)
    (entry,) = state.load_all().quarantined
    assert entry.quarantine_key is not None
    state.flush()
    copy = json.loads(SimulatedObjectStore(disk=disk.disk).read(entry.quarantine_key))
    assert base64.b64decode(copy["base64"]) == planted and copy["key"] == RISK_A


def test_deep_nesting_is_measured_without_recursion_and_strings_are_skipped() -> None:
    assert nesting_depth(DEEP) == 100_000
    assert nesting_depth('{"a":"[[[[[[","b":[1,{"c":"]]}"}]}') == 3
    assert nesting_depth('["\\"[[[", "x"]') == 1
    assert nesting_depth('"' + "[" * 1000) == 0  # an unterminated string swallows the rest
    assert MAX_NESTING < 100


def _repeats(pattern: str) -> List[str]:
    """Kinds of repetition in a regular expression (re's own parser): 'greedy', 'lazy', 'possessive', or
    'optional' (at most once)."""
    kinds: List[str] = []
    names = {"MAX_REPEAT": "greedy", "MIN_REPEAT": "lazy", "POSSESSIVE_REPEAT": "possessive"}

    def walk(items: Any) -> None:
        for op, argument in items:
            if str(op) in names:
                kinds.append("optional" if argument[1] == 1 else names[str(op)])  # x? cannot backtrack far
            for part in argument if isinstance(argument, (list, tuple)) else ():
                if isinstance(part, parser.SubPattern):
                    walk(part)
                elif isinstance(part, (list, tuple)):
                    for sub in part:
                        if isinstance(sub, parser.SubPattern):
                            walk(sub)

    walk(parser.parse(pattern))
    return kinds


def test_load_path_patterns_cannot_backtrack() -> None:
    """Structural, not timed: a search pattern that opens with a literal and repeats only possessively costs
    linear time. The old v1 plan-note pattern opened with a greedy \\s* (2 s for 40,000 spaces)."""
    for pattern in (_V1_PLAN_NOTE, bounds._STRING_LITERAL, bounds._NOT_BRACKET):
        assert set(_repeats(pattern.pattern)) <= {"possessive", "optional"}, pattern.pattern
    assert _V1_PLAN_NOTE.pattern.startswith(re.escape("[plan"))


def test_twenty_thousand_lost_records_are_logged_and_audited_in_one_batch() -> None:
    disk = _good_store()
    names = {f"group-lost{index}": 3 for index in range(20_000)}
    manifest = _raw("manifest", 1, 50, {"records": {**names, "strategy-lt112": 1}})
    disk.save(LIVE.manifest_key("a"), manifest)
    disk.flush()
    state, _, log = _open(disk)
    loaded = state.load_all()
    assert len(loaded.lost) == 20_000
    assert len(log.errors) <= 12  # ten names, one count, nothing per record
    audit = state.get("audit")
    assert audit is not None
    lost_entries = [entry for entry in audit.entries if entry.kind == "lost"]  # type: ignore[union-attr]
    assert len(lost_entries) == 1 and "20000 at load" in lost_entries[0].message


def test_six_hundred_foreign_keys_do_not_fill_the_quota_and_live_records_still_save() -> None:
    disk = SimulatedObjectStore(max_files=1_000, max_size=50 * 1024 * 1024)
    for index in range(600):
        disk.save(LIVE.key(f"foreign/file{index}.txt"), "x" * 100)
    disk.flush()
    state, port, _ = _open(disk)
    port.store.max_files = disk.max_files
    loaded = state.load_all()
    assert len(loaded.quarantined) == 600 and all(q.quarantine_key is None for q in loaded.quarantined)
    assert port.calls["read_bytes"] + port.calls["read"] == 0  # listed, never read
    for index in range(100):
        assert state.put(replace(group(f"g{index}")))
    state.flush()
    assert len([k for k in disk.crash().keys if "/quarantine/" in k]) <= 1  # the index only


def test_quarantine_copies_stay_inside_their_budget_and_the_index_lists_the_rest() -> None:
    disk = _good_store()
    for index in range(60):
        disk.save(LIVE.record_key(f"group-bad{index}", "a"), f"junk number {index} " * 50)
    disk.flush()
    budget = QuarantineBudget(max_keys=10, max_bytes=4_000, index_entries=20)
    port = SimulatedStorePort(SimulatedObjectStore(disk=disk.disk))
    log = ListLog()
    outcome = load_namespace(port, LIVE, log, check_record, budget)
    copies = [q.quarantine_key for q in outcome.result.quarantined if q.quarantine_key]
    assert len(outcome.result.quarantined) == 60 and 0 < len(copies) <= 9
    assert sum(len(port.store.read_bytes(key)) for key in copies) <= 4_000
    assert len(log.errors) <= 21  # 20 lines, then one summary
    index = json.loads(port.store.read(LIVE.key("quarantine/index.json")))
    assert len(index["entries"]) == 20 and index["more"] == 40
    assert all(port.store.read(LIVE.record_key(f"group-bad{i}", "a")).startswith("junk") for i in range(60))


def test_an_unexpected_exception_while_loading_one_record_quarantines_only_that_record() -> None:
    disk = _good_store()

    def exploding(record: Any) -> Optional[str]:
        if getattr(record, "group_id", None) == "g1":
            raise KeyError("a bug nobody foresaw")
        return None

    log = ListLog()
    outcome = load_namespace(SimulatedStorePort(disk), LIVE, log, exploding)
    assert "group-g1" not in outcome.records and "strategy-lt112" in outcome.records
    assert {q.key for q in outcome.result.quarantined} == {LIVE.record_key("group-g1", s) for s in "ab"}
    assert all("KeyError" in q.reason for q in outcome.result.quarantined)


def test_a_record_with_every_usual_slot_bad_writes_to_its_spare_slots() -> None:
    disk = _good_store()
    for slot in "ab":
        disk.save(LIVE.record_key("risk", slot), f"bad {slot}")
    disk.flush()
    state, _, _ = _open(disk)
    state.load_all()
    for _ in range(3):
        assert state.put(replace(risk(), consecutive_losses=_ + 1))
        state.flush()
    store = SimulatedObjectStore(disk=disk.disk)
    assert store.read(LIVE.record_key("risk", "a")) == "bad a" and store.read(LIVE.record_key("risk", "b")) == "bad b"
    assert {LIVE.record_key("risk", s) for s in "cd"} <= set(store.keys)
    again, _, _ = _open(disk)
    loaded = again.load_all()
    assert loaded.risk is not None and loaded.risk.consecutive_losses == 3


def test_the_record_limit_comes_from_the_strategy_config() -> None:
    limits = record_limits(default_strategies(Params()))
    assert limits == RecordLimits(max_leg_contracts=25)  # 0DTE: 25 units of 1; LT112: 10 units of 2 naked puts
    big = replace(group("g2"), legs=(_leg(quantity=-26),))
    check = record_check(limits)
    assert check(big) is not None and check(replace(big, legs=(_leg(quantity=-25),))) is None


def test_a_bare_checksum_is_not_a_key() -> None:
    # why semantic checks are needed: anyone can compute the checksum of an impossible body
    body = canonical_json(to_body(replace(group("g2"), legs=(_leg(quantity=-2, filled_quantity=5),))))
    assert checksum_of("order_group", 2, 1, body) in _sealed_text("order_group", 2, 1, body)


def test_namespace_of_other_runs_is_not_touched() -> None:
    disk = _good_store()
    other = Namespace.for_run("-123456789", False, "9", "")
    disk.save(other.record_key("risk", "a"), DEEP)
    disk.flush()
    state, port, _ = _open(disk)
    assert state.load_all().quarantined == [] and port.calls["read_bytes"] <= len(disk.keys)


def test_expiry_field_of_impossible_dates_is_a_record_error() -> None:
    bad = {**to_body(group("g2")), "legs": [{**to_body(group("g2"))["legs"][0], "expiry": "2024-13-45"}]}
    disk = _good_store()
    disk.save(G2_A, _raw("order_group", 2, 1, bad))
    disk.flush()
    state, _, _ = _open(disk)
    (entry,) = state.load_all().quarantined
    assert "expiry" in entry.reason and date(2024, 1, 19) == group("g2").legs[0].expiry


def test_a_load_that_could_not_list_the_keys_runs_once_and_writes_above_anything_older() -> None:
    class Unlistable(SimulatedStorePort):
        def keys(self) -> List[str]:
            self.calls["keys"] += 1
            raise OSError("listing refused")

    disk = _good_store()
    older, _, _ = _open(disk)
    older.load_all()
    for number in range(6):  # the saved strategy is at seq 7 in slot a or b
        older.put(strategy(f"older {number}"))
        older.flush()
    port = Unlistable(SimulatedObjectStore(disk=disk.disk))
    state = StateStore(port, LIVE, lambda: T0, ListLog())
    for _ in range(3):
        assert state.put(strategy("written blind"))
    assert port.calls["keys"] == 1
    state.flush()
    # the next start can list again: what this run wrote wins over the older versions it could not see
    assert _open(disk)[0].load_all().strategies["lt112"].reason == "written blind"
