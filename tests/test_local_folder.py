"""The research ports read a storage folder like LEAN lays it out, and never write."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence.local_folder import LocalFolderStore, ReadOnlyObjectStore
from tests.harness.object_store import SimulatedObjectStore


def test_reads_keys_as_relative_paths_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "crashsafe" / "7" / "live").mkdir(parents=True)
    (tmp_path / "crashsafe" / "7" / "live" / "risk-a.json").write_text('{"x":1}', encoding="utf-8")
    store = LocalFolderStore(tmp_path)
    assert store.keys() == ["crashsafe/7/live/risk-a.json"]
    assert store.contains_key("crashsafe/7/live/risk-a.json")
    # LEAN strips leading '.' and '/' and treats '\' as '/'
    assert store.read("/crashsafe\\7\\live/risk-a.json") == '{"x":1}'


def test_bad_bytes_decode_like_lean_instead_of_raising(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_bytes(b'{"a":"\xff"}')
    assert LocalFolderStore(tmp_path).read("k.json") == '{"a":"\ufffd"}'


def test_missing_key_and_missing_root(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "nothing-here")
    assert store.keys() == []
    assert not store.contains_key("a.json")
    with pytest.raises(KeyError, match=r"a\.json"):
        store.read("a.json")


def test_writes_are_refused_with_false_and_leave_the_folder_untouched(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text("v", encoding="utf-8")
    store = LocalFolderStore(tmp_path)
    assert store.save("k.json", "changed") is False
    assert store.delete("k.json") is False
    assert store.flush() is False
    assert (tmp_path / "k.json").read_text(encoding="utf-8") == "v"
    assert store.refused_writes == ["k.json", "k.json"]


class _FakeLeanStore:
    def __init__(self) -> None:
        self.data = {"a.json": "1"}
        self.keys = list(self.data)

    def read(self, key: str) -> str:
        return self.data[key]

    def contains_key(self, key: str) -> bool:
        return key in self.data

    def save(self, key: str, text: str) -> bool:  # pragma: no cover - must never be called
        raise AssertionError("research wrote to the object store")


def test_read_only_wrapper_over_a_lean_store_never_writes() -> None:
    inner = _FakeLeanStore()
    port = ReadOnlyObjectStore(inner)
    assert port.keys() == ["a.json"] and port.read("a.json") == "1" and port.contains_key("a.json")
    assert port.save("a.json", "2") is False and port.delete("a.json") is False
    assert inner.data == {"a.json": "1"}


def test_the_research_ports_read_stored_bytes_unchanged(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_bytes(b'{"a":"\xff"}')
    assert LocalFolderStore(tmp_path).read_bytes("k.json") == b'{"a":"\xff"}'
    store = SimulatedObjectStore()
    store.save_bytes("k.json", b'{"a":"\xff"}')
    assert ReadOnlyObjectStore(store).read_bytes("k.json") == b'{"a":"\xff"}'
