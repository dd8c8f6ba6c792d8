"""Every in-memory map keyed by records or symbols is bounded: the store forgets a record once its slots are
deleted after retiring (but a retired record written again still resumes above its archived seq), and main.py
remembers LEAN symbols only of contracts it holds or ordered, dropped once they expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import List

from core.ports import ListLog
from core.records import GroupStatus
from persistence.archive import ArchiveLimits, ArchiveRecord, archive_text, archive_with
from persistence.codec import canonical_json, record_json, to_body
from persistence.store import StateStore
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.harness.simulation import Deployment
from tests.test_persistence_store import LIVE, group, position


def _store(now: List[datetime]) -> tuple[StateStore, SimulatedObjectStore]:
    backend = SimulatedObjectStore()
    store = StateStore(SimulatedStorePort(backend), LIVE, lambda: now[0], ListLog(), wall_clock=lambda: 0.0)
    store.load_all()
    return store, backend


def test_the_store_forgets_retired_records_once_their_slots_are_deleted() -> None:
    now = [datetime(2024, 1, 2, 10)]
    store, _backend = _store(now)
    sizes = []
    for cycle in range(60):
        g, p = group(f"g{cycle}"), position(f"p{cycle}")
        store.put(replace(g, status=GroupStatus.FILLED))
        store.put(replace(p, position_id=f"p{cycle}", entry_group_id=g.group_id))
        store.retire(g.record_name, f"position-p{cycle}")
        store.flush()
        store.save_dirty()
        sizes.append((len(store._keys), len(store._seq), len(store._slots)))
    assert sizes[-1] == sizes[20], f"maps grow with the records ever written: {sizes[20]} -> {sizes[-1]}"


def test_a_retired_record_written_again_resumes_above_its_archived_seq() -> None:
    now = [datetime(2024, 1, 2, 10)]
    store, backend = _store(now)
    g = group("g1")
    for decision in ("a", "b", "c"):
        store.put(replace(g, decision=decision))
    store.retire(g.record_name)
    store.flush()
    store.save_dirty()
    assert g.record_name not in store._seq
    store.put(replace(g, decision="again"))
    store.flush()
    restarted = StateStore(SimulatedStorePort(backend.crash()), LIVE, lambda: now[0], ListLog())
    loaded = restarted.load_all()
    assert loaded.groups["g1"].decision == "again", "not taken for a retired leftover"


def test_record_json_and_archive_text_are_the_canonical_text() -> None:
    archive = ArchiveRecord()
    for cycle in range(30):
        items = [(group(f"g{cycle}"), 3), (position(f"p{cycle}"), 4)]
        archive = archive_with(archive, items, datetime(2024, 1, 2) + timedelta(days=cycle), ArchiveLimits())
        assert archive_text(archive) == canonical_json(to_body(archive))
        assert len(archive_text(archive)) <= ArchiveLimits().max_bytes
    for record in (group("g1"), position("p1"), archive):
        assert record_json(record) == canonical_json(to_body(record))


def test_main_remembers_only_symbols_of_contracts_it_holds_or_ordered_and_forgets_expired_ones() -> None:
    deployment = Deployment(seed=3, start=date(2024, 1, 2), end=date(2024, 2, 16))
    deployment.run()
    algorithm = deployment.algorithm
    assert algorithm is not None and deployment.runtime_error is None
    known = algorithm.known_symbols
    assert len(known) <= 40, f"{len(known)} symbols remembered after six weeks"
    today = algorithm.time.date()
    assert all(symbol.id.date.date() >= today for symbol in known.values() if symbol.underlying is not None)
    traded = {group.legs[0].symbol for group in deployment.engine.snapshot().groups.values() if group.legs}
    assert traded, "the scenario trades"
