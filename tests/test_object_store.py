"""SimulatedObjectStore follows LocalObjectStore's Python-facing behaviour (Engine/Storage/LocalObjectStore.cs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.object_store import SimulatedCrash, SimulatedObjectStore


def test_save_takes_text_or_bytes_and_refuses_a_dict_like_pythonnet() -> None:
    store = SimulatedObjectStore()
    assert store.save("k/text.json", '{"a":1}') is True
    assert store.save_bytes("k/bytes.bin", b"\x00\x01") is True
    assert store.save_string("k/s.txt", "hello") is True
    with pytest.raises(TypeError, match="No method matches given arguments for Save"):
        store.save("k/dict.json", {"a": 1})  # type: ignore[arg-type]
    assert store.read("k/text.json") == '{"a":1}'
    assert store.read_bytes("k/bytes.bin") == b"\x00\x01"
    assert store.read_string("k/s.txt") == "hello"
    assert not store.contains_key("k/dict.json")


@pytest.mark.parametrize(
    "key",
    ["a:b.json", "state.v2.json", "a/b.c/d", "x+y", "x@y", "caf\u00e9", "a..json", "", "a,b"],
)
def test_keys_outside_leans_regex_are_refused_on_save(key: str) -> None:
    store = SimulatedObjectStore()
    with pytest.raises(ValueError, match=r"path is not supported|cannot be null"):
        store.save(key, "x")
    assert store.keys == []


@pytest.mark.parametrize("key", ["-123456789/live/risk-a.json", "a b/#$=_-", ".hidden", "a\\b.json", "x/y/z"])
def test_keys_inside_leans_regex_are_accepted(key: str) -> None:
    store = SimulatedObjectStore()
    assert store.save(key, "x") is True
    assert store.contains_key(key)


def test_leading_dot_and_slashes_are_normalised_and_backslash_is_a_folder() -> None:
    store = SimulatedObjectStore()
    store.save(".x", "1")
    assert store.read("/x") == "1" and store.read("x") == "1"
    store.save("a\\b", "2")
    assert store.keys == ["a/b", "x"]


def test_missing_key_read_raises_keyerror_with_leans_text() -> None:
    with pytest.raises(KeyError, match="was not found in the current project"):
        SimulatedObjectStore().read("nope")


def test_keys_is_a_property_listing_memory_and_disk() -> None:
    store = SimulatedObjectStore()
    store.save("b", "1")
    store.flush()
    store.save("a", "2")
    assert isinstance(store.keys, list)
    assert store.keys == ["a", "b"]


def test_saves_are_memory_first_and_reach_disk_only_on_flush() -> None:
    store = SimulatedObjectStore()
    store.save("a", "1")
    store.save("b", "2")
    assert store.read("a") == "1"  # served from memory
    assert store.pending_keys() == ["a", "b"]
    assert store.flush(["b"]) == 1
    restarted = store.crash()
    assert restarted.keys == ["b"]
    with pytest.raises(RuntimeError):
        store.read("a")  # the dead process is gone


def test_delete_is_immediate_on_disk_and_drops_a_pending_save() -> None:
    store = SimulatedObjectStore()
    store.save("a", "1")
    store.flush()
    store.save("a", "2")
    assert store.delete("a") is True
    assert store.crash().keys == []  # gone from disk at once, no flush needed
    fresh = SimulatedObjectStore()
    assert fresh.delete("never") is False


def test_get_file_path_and_clear_flush_everything_pending(tmp_path: Path) -> None:
    store = SimulatedObjectStore(tmp_path)
    store.save("p/a.json", "1")
    store.save("p/b.json", "2")
    path = store.get_file_path("p/a.json")
    assert Path(path).read_text() == "1"
    assert (tmp_path / "p" / "b.json").read_text() == "2"
    store.save("p/c.json", "3")
    store.clear()
    assert (tmp_path / "p" / "c.json").read_text() == "3"
    assert store.read("p/c.json") == "3"  # reloaded from disk after the cache was emptied


def test_over_limit_save_returns_false_and_records_the_error() -> None:
    store = SimulatedObjectStore(max_size=10, max_files=2)
    assert store.save("a", "12345") is True
    assert store.save("b", "123456") is False  # 11 bytes > 10
    assert store.save("b", "1") is True
    assert store.save("c", "1") is False  # a third file
    assert store.save("a", "123") is True  # replacing a key frees its old size
    assert len(store.errors) == 2
    assert "ObjectStore limit" in store.errors[0]
    assert store.keys == ["a", "b"]


def test_torn_write_leaves_a_truncated_file_on_disk() -> None:
    store = SimulatedObjectStore()
    store.save("a", '{"long":"value"}')
    store.torn_write("a", 5)
    assert store.crash().read("a") == '{"lon'


def test_fault_hooks_can_crash_at_an_exact_save_or_flush_point() -> None:
    store = SimulatedObjectStore()
    seen: list[tuple[str, str]] = []

    def hook(event: str, key: str) -> None:
        seen.append((event, key))
        if event == "flush" and key == "b":
            raise SimulatedCrash("died writing b")

    store.hooks.append(hook)
    store.save("a", "1")
    store.save("b", "2")
    store.save("c", "3")
    with pytest.raises(SimulatedCrash):
        store.flush()
    assert seen[:3] == [("save", "a"), ("save", "b"), ("save", "c")]
    assert store.crash().keys == ["a"]  # sorted flush order: a written, died before b
    assert not issubclass(SimulatedCrash, Exception)


def test_a_key_cannot_be_both_a_file_and_a_folder_and_the_flush_pass_stops() -> None:
    store = SimulatedObjectStore()
    store.save("a", "1")
    store.save("a/b", "2")
    store.save("c", "3")
    store.flush()
    assert store.errors and "folder" in store.errors[0]
    assert store.pending_keys() == ["a/b", "c"]  # LEAN: later entries wait for the next pass


def test_folder_disk_is_laid_out_like_leans_storage_folder(tmp_path: Path) -> None:
    store = SimulatedObjectStore(tmp_path)
    store.save("crashsafe/1/live/records/risk-a.json", "{}")
    store.flush()
    assert (tmp_path / "crashsafe/1/live/records/risk-a.json").read_text() == "{}"
    assert SimulatedObjectStore(tmp_path).read("crashsafe/1/live/records/risk-a.json") == "{}"


def test_bad_utf8_reads_back_as_replacement_characters() -> None:
    store = SimulatedObjectStore()
    store.save_bytes("a", b"ok\xff")
    assert store.read("a") == "ok\ufffd"
