"""order_group v1 -> v2 (and the archive that embeds groups, v1 -> v2): the entry plan facts move from the
"[plan target=... max_loss=... vix=...]" note in the decision text into their own fields."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict

import pytest

from persistence.archive import ArchiveRecord
from persistence.codec import to_body
from persistence.migrations import STEPS, upgrade
from persistence.schemas import CURRENT_VERSION
from tests.harness.object_store import SimulatedObjectStore
from tests.test_persistence_store import LIVE, _raw, group, restart

NOTE = "[plan target=153.0 max_loss=306.5 vix=14.25]"


def v1_group_body(decision: str | None) -> Dict[str, Any]:
    """A group body as order_group v1 saved it: no plan fields, the facts (if any) in the decision note."""
    body = {k: v for k, v in to_body(group("g1")).items() if k not in ("profit_target", "max_loss", "entry_vix")}
    body["decision"] = decision
    return body


def test_versions_and_steps_are_in_place() -> None:
    assert CURRENT_VERSION["order_group"] >= 2 and CURRENT_VERSION["archive"] >= 2  # later versions chain on
    assert ("order_group", 1) in STEPS and ("archive", 1) in STEPS


@pytest.mark.parametrize(
    ("decision", "facts", "left"),
    [
        (NOTE, (153.0, 306.5, 14.25), None),
        (f"COMPLETE: naked puts missing {NOTE}", (153.0, 306.5, 14.25), "COMPLETE: naked puts missing"),
        ("[plan target=80.0 max_loss=160.0 vix=none]", (80.0, 160.0, None), None),
        ("WAIT: market closed", (None, None, None), "WAIT: market closed"),
        (None, (None, None, None), None),
    ],
)
def test_the_step_reads_the_old_note_into_the_fields(
    decision: str | None, facts: tuple[float | None, ...], left: str | None
) -> None:
    body, migrated = upgrade("order_group", 1, v1_group_body(decision))
    assert migrated
    assert (body["profit_target"], body["max_loss"], body["entry_vix"]) == facts
    assert body["decision"] == left


def test_a_group_saved_at_v1_loads_with_its_plan_facts_and_is_rewritten_at_v2() -> None:
    store = SimulatedObjectStore()
    store.save(LIVE.record_key("group-g1", "a"), _raw("order_group", 1, 5, v1_group_body(f"PROVISIONAL WAIT {NOTE}")))
    store.save(LIVE.record_key("group-g2", "a"), _raw("order_group", 1, 2, {**v1_group_body(None), "group_id": "g2"}))
    store.flush()
    state, _log, loaded = restart(store)
    assert loaded.quarantined == [] and sorted(loaded.migrated) == ["group-g1", "group-g2"]
    g1, g2 = loaded.groups["g1"], loaded.groups["g2"]
    assert (g1.profit_target, g1.max_loss, g1.entry_vix) == (153.0, 306.5, 14.25)
    assert g1.decision == "PROVISIONAL WAIT"
    assert (g2.profit_target, g2.max_loss, g2.entry_vix) == (None, None, None)
    state.put(replace(g1, decision="COMPLETE"))
    state.flush()
    rewritten = json.loads(SimulatedObjectStore(disk=store.disk).read(LIVE.record_key("group-g1", "b")))
    assert rewritten["version"] == CURRENT_VERSION["order_group"] and rewritten["body"]["profit_target"] == 153.0


def test_an_archive_saved_at_v1_upgrades_its_embedded_groups() -> None:
    archive = {**to_body(ArchiveRecord()), "groups": [v1_group_body(f"FILLED {NOTE}")]}
    store = SimulatedObjectStore()
    store.save(LIVE.record_key("archive", "a"), _raw("archive", 1, 3, archive))
    store.flush()
    _state, _log, loaded = restart(store)
    assert loaded.quarantined == []
    archived = loaded.archived_groups["g1"]
    assert (archived.profit_target, archived.max_loss, archived.entry_vix) == (153.0, 306.5, 14.25)
    assert archived.decision == "FILLED"


def test_position_v2_and_archive_v2_gain_an_empty_attention() -> None:
    """position v3 adds `attention` (needs-attention reason); v2 bodies (live or archived) load with none."""
    assert CURRENT_VERSION["position"] >= 3 and ("position", 2) in STEPS and ("archive", 2) in STEPS
    body = {"position_id": "p1", "note": "x"}
    assert STEPS[("position", 2)](body) == {"position_id": "p1", "note": "x", "attention": ""}
    archived = STEPS[("archive", 2)]({"positions": [dict(body)], "groups": [], "retired": []})
    assert archived["positions"] == [{"position_id": "p1", "note": "x", "attention": ""}]
