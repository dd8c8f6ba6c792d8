"""main.LeanObjectStore.flush over the harness's LocalObjectStore model (tests/harness/object_store.py).

LocalObjectStore.GetFilePath of a known key runs Persist(), and PersistData writes every dirty entry; the path
of a key is PathForKey, fixed for the run (Engine/Storage/LocalObjectStore.cs, LEAN 24863901). So one
get_file_path per flush is enough to write everything pending; every key is still read back and compared.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List

import pytest

from tests.harness.loader import load_main
from tests.harness.object_store import SimulatedObjectStore


class _Algorithm:
    """What LeanObjectStore uses of QCAlgorithm: object_store, deployment_target, error()."""

    def __init__(self, store: SimulatedObjectStore, target: Any) -> None:
        self.object_store = store
        self.deployment_target = target
        self.errors: List[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)


def _port(tmp_path: Path) -> tuple[Any, SimulatedObjectStore, _Algorithm]:
    module = sys.modules[load_main().__module__]
    store = SimulatedObjectStore(tmp_path)
    algorithm = _Algorithm(store, module.DeploymentTarget.LOCAL_PLATFORM)  # type: ignore[attr-defined]
    return module.LeanObjectStore(algorithm), store, algorithm  # type: ignore[attr-defined]


KEYS = [f"crashsafe/p/live/records/group-g{i}-a.json" for i in range(5)]


def test_a_flush_persists_once_and_still_reads_every_key_back(tmp_path: Path) -> None:
    port, store, _ = _port(tmp_path)
    for key in KEYS:
        assert port.save(key, f"first {key}")
    assert port.flush() is True
    before = store.calls["get_file_path"]
    for key in KEYS:
        assert port.save(key, f"second {key}")
    assert store.calls["get_file_path"] == before  # nothing persisted before the flush asks
    assert port.flush() is True
    assert store.calls["get_file_path"] - before == 1  # one Persist; the paths are known (before: one per key)
    for key in KEYS:
        assert (tmp_path / key).read_bytes() == f"second {key}".encode()


def test_a_failed_write_of_any_key_is_still_found_by_the_read_back(tmp_path: Path) -> None:
    port, store, algorithm = _port(tmp_path)
    for key in KEYS:
        port.save(key, "v1")
    assert port.flush() is True
    store.failing_writes = lambda key: key == KEYS[3]  # Persist swallows it (ErrorRaised); the file keeps v1
    for key in KEYS:
        port.save(key, "v2")
    with pytest.raises(OSError):
        port.flush()
    assert len(algorithm.errors) == 2 and KEYS[3] in algorithm.errors[0]


def test_a_deleted_key_forgets_its_path(tmp_path: Path) -> None:
    port, _, _ = _port(tmp_path)
    for key in KEYS:
        port.save(key, "v1")
    port.flush()
    for key in KEYS:
        port.delete(key)
    assert port._paths == {} and port._unconfirmed == {}
