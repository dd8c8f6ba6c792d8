"""`SimulatedObjectStore`: an offline stand-in for LEAN's LocalObjectStore, with its Python-facing API.

The offline harness hands this object out as `QCAlgorithm.object_store`, and the persistence tests drive it
directly to crash the process at any point of a flush. It follows LEAN's Engine/Storage/LocalObjectStore.cs and
Common/Storage/ObjectStore.cs at commit 24863901 (members named below).

Where it follows LEAN
- `save(key, str | bytes)` / `save_string` / `save_bytes` return a bool. Any other value type (a dict, an int)
  raises `TypeError("No method matches given arguments for Save: ...")`, as pythonnet does; nothing is
  serialised for you.
- A key is checked against LEAN's regex `^\\.?[a-zA-Z0-9\\\\/_#\\-\\$= ]+\\.?[a-zA-Z0-9]*$` on save only
  (ValueError standing in for ArgumentException), also at most 100 '/' and 100 '\\'. Every method
  normalises the key: leading '.' stripped, then leading '/' and '\\', then '\\' -> '/'.
- Memory first: a save goes to memory and is marked pending; reads are served from memory at once.
- Deletes are immediate, in memory AND on disk, while saves wait for a flush.
- Limits (`max_size` bytes, `max_files`): an over-limit save returns False, raises nothing, and the message
  is appended to `errors` (LEAN's ErrorRaised -> Debug "ObjectStore Persistence Error ...").
  How they count follows Engine/Storage/LocalObjectStore.cs `IsWithinStorageLimit` (LEAN commit 24863901):
  the new file counts 1 and its own length, every OTHER key known in memory or on disk counts 1 and its
  length (memory content first, else the file's; 0 for a key registered with no content), the key being
  replaced is skipped; refused when the count is > MaxFiles or the bytes > MaxSize
  (`HandleStorageLimitExceeded`: False outside research). A key `get_file_path` registers goes through the
  same check (SaveBytes(path, null)) and then counts as a file. `max_files` / `max_size` stand for
  ObjectStore.MaxFiles / MaxSize (Common/Storage/ObjectStore.cs).
- A read of a missing key raises KeyError with LEAN's text. Bad UTF-8 reads back as U+FFFD, never raises
  (Common/Storage/ObjectStore.cs `Read`: Encoding.UTF8.GetString over ReadBytes); `read_bytes` returns the
  stored bytes unchanged (ObjectStore.ReadBytes -> LocalObjectStore.ReadBytes).
- `keys` is a property (a list of str), `get_file_path(existing key)` flushes everything pending and returns a
  path; `get_file_path(unknown key)` only registers the key with null content (no flush): `contains_key` is then
  True and `read` gives None (GetFilePath, ReadBytes, ObjectStore.Read). `clear()` flushes, then empties the cache.
- Persist/PersistData swallow write errors (ErrorRaised; the store stays dirty): `failing_writes` models a
  failed disk write, and `get_file_path` still returns the path.
- A flush writes key by key with no temp file and no rename; the order is not the save order; when one
  write fails (a key that is both a file and a folder, 'a' and 'a/b') the pass stops there.

Where it differs (on purpose)
- There is no timer thread: nothing reaches "disk" until the caller calls `flush()` (all pending keys or
  any subset) or `get_file_path`/`clear`. That is what lets a test choose exactly which keys survive.
- "Disk" is a dict, or a real folder when a root path is given (the research notebook then reads that
  folder just like LEAN's storage/ folder). Flush order is sorted by key, not .NET hash order: any fixed
  order that is not the save order makes the same point and keeps tests reproducible.
- `torn_write(key, keep_bytes)` leaves a truncated file, the state File.WriteAllBytes leaves when the
  process dies mid-write. `crash()` returns a new store over the same disk with every pending save lost,
  and the old object refuses further use.
- Fault hooks: every callable in `hooks` is called as hook("save", key) before each save and
  hook("flush", key) before each key is written by a flush, so a test can raise `SimulatedCrash` (a
  BaseException: algorithm code's `except Exception` never swallows it) at exactly that point.
- `calls` counts every public call by name, so tests can assert that an idle save touched nothing.
- `keys` lists keys with content only; LEAN's Keys (GetObjectStoreEntries(loadContent: false)) also lists a
  key registered by GetFilePath with no content. The template never registers a key it did not save.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Protocol, Union

KEY_PATTERN = re.compile(r"^\.?[a-zA-Z0-9\\/_#\-\$= ]+\.?[a-zA-Z0-9]*$")
MAX_SEPARATORS = 100
DEFAULT_MAX_SIZE = 10 * 1024 * 1024 * 1024  # LEAN Controls.StorageLimit default (10 GiB)
DEFAULT_MAX_FILES = 10_000  # LEAN Controls.StorageFileCount default
QC_BASE_MAX_SIZE = 50 * 1024 * 1024  # QuantConnect cloud base plan: 50 MB ...
QC_BASE_MAX_FILES = 1_000  # ... and 1,000 files

FaultHook = Callable[[str, str], None]


class SimulatedCrash(BaseException):
    """Raised by a fault hook to kill the 'process' at an exact point. BaseException on purpose."""


def normalize_key(key: str) -> str:
    """LEAN's NormalizePath: strip leading '.', then leading '/' and '\\', then '\\' -> '/'."""
    if key is None:
        raise ValueError("Value cannot be null. (Parameter 'key')")  # ArgumentNullException
    return key.lstrip(".").lstrip("/\\").replace("\\", "/")


def check_key(key: str) -> None:
    """LEAN's save-time key rule; raises ValueError like LocalObjectStore's ArgumentException."""
    if not KEY_PATTERN.match(key) or key.count("/") > MAX_SEPARATORS or key.count("\\") > MAX_SEPARATORS:
        raise ValueError(f"LocalObjectStore: path is not supported: '{key}'")


class Disk(Protocol):
    """Where flushed bytes live. Survives `crash()`."""

    def write(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> Optional[bytes]: ...

    def delete(self, key: str) -> bool: ...

    def keys(self) -> List[str]: ...

    def path_of(self, key: str) -> str: ...


class DictDisk:
    """Disk as a dict; refuses a key that would be both a file and a folder, as a filesystem does."""

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}

    def write(self, key: str, data: bytes) -> None:
        parts = key.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self.files:
                raise OSError(f"cannot create folder '{'/'.join(parts[:depth])}': a file has that name")
        prefix = key + "/"
        if any(existing.startswith(prefix) for existing in self.files):
            raise OSError(f"cannot write file '{key}': a folder has that name")
        self.files[key] = bytes(data)

    def read(self, key: str) -> Optional[bytes]:
        return self.files.get(key)

    def delete(self, key: str) -> bool:
        return self.files.pop(key, None) is not None

    def keys(self) -> List[str]:
        return sorted(self.files)

    def path_of(self, key: str) -> str:
        return f"/simulated-storage/{key}"


class FolderDisk:
    """Disk as a real folder laid out like LEAN's storage/ folder (`<root>/<key>`).

    Paths follow Engine/Storage/LocalObjectStore.cs (LEAN 24863901): the root is made absolute once
    (`Initialize`: CreateDirectory(...).FullName, which does not resolve symbolic links) and a key's file is
    `PathForKey`, Path.Combine(root, key): a string join, no disk lookup. A write is `PersistData`'s: create the
    parent folder only when DirectoryExists says it is missing, then File.WriteAllBytes."""

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_text = os.path.abspath(self.root)

    def write(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as file:  # truncate + write, no rename: what File.WriteAllBytes does
            file.write(data)

    def read(self, key: str) -> Optional[bytes]:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def delete(self, key: str) -> bool:
        path = self.root / key
        if path.is_file():
            path.unlink()
            return True
        return False

    def keys(self) -> List[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def path_of(self, key: str) -> str:
        return os.path.join(self._root_text, key)


class SimulatedObjectStore:
    """LEAN's LocalObjectStore semantics without LEAN; see the module docstring."""

    def __init__(
        self,
        root: Union[str, Path, None] = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_files: int = DEFAULT_MAX_FILES,
        disk: Optional[Disk] = None,
    ) -> None:
        self.disk: Disk = disk if disk is not None else (FolderDisk(root) if root is not None else DictDisk())
        self.max_size = max_size
        self.max_files = max_files
        self.hooks: List[FaultHook] = []
        # a failed disk write (disk full, I/O error) for the keys it returns True for; LocalObjectStore's
        # PersistData catches it, raises ErrorRaised and leaves the store dirty (Persist)
        self.failing_writes: Optional[Callable[[str], bool]] = None
        self.errors: List[str] = []
        self.calls: Counter[str] = Counter()
        self._memory: Dict[str, Optional[bytes]] = {}  # loaded or saved content; None = registered, no content
        self._pending: Dict[str, bytes] = {}  # saved but not yet flushed
        # size of every known key (memory content if loaded, else the file), kept incrementally so a save's
        # limit check is O(1) here; LEAN walks the whole folder instead, which only makes it slower
        self._sizes: Dict[str, int] = {k: len(self.disk.read(k) or b"") for k in self.disk.keys()}
        self._total_size = sum(self._sizes.values())
        self._dead = False

    # -- saving ------------------------------------------------------------------------------------------------

    def save(self, key: str, text: Union[str, bytes, None] = None, encoding: Optional[str] = None) -> bool:
        self._alive("save")
        if text is None:
            # save(key): store the bytes of the file at get_file_path(key) (only meaningful with a folder)
            normalized = normalize_key(key)
            data = self.disk.read(normalized)
            if data is None:
                raise ValueError(f"There is no file at the path for key '{key}'")  # ArgumentException
            return self._save_bytes(key, data)
        if isinstance(text, str):
            return self._save_bytes(key, text.encode(encoding or "utf-8"))
        if isinstance(text, (bytes, bytearray)):
            return self._save_bytes(key, bytes(text))
        raise TypeError(f"No method matches given arguments for Save: (<class 'str'>, {type(text)})")

    def save_string(self, key: str, text: str, encoding: Optional[str] = None) -> bool:
        self._alive("save_string")
        if not isinstance(text, str):
            raise TypeError(f"No method matches given arguments for SaveString: (<class 'str'>, {type(text)})")
        return self._save_bytes(key, text.encode(encoding or "utf-8"))

    def save_bytes(self, key: str, contents: bytes) -> bool:
        self._alive("save_bytes")
        if not isinstance(contents, (bytes, bytearray)):
            raise TypeError(f"No method matches given arguments for SaveBytes: (<class 'str'>, {type(contents)})")
        return self._save_bytes(key, bytes(contents))

    def _save_bytes(self, key: str, data: bytes) -> bool:
        normalized = normalize_key(key)
        check_key(normalized)
        for hook in list(self.hooks):
            hook("save", normalized)
        if not self._within_limits(normalized, len(data)):
            message = (
                "ObjectStore Persistence Error: You have reached the ObjectStore limit for files it can save: "
                f"{self.max_files} files, {self.max_size} bytes. Unable to save the new file: '{normalized}'"
            )
            self.errors.append(message)
            return False
        self._memory[normalized] = data
        self._pending[normalized] = data
        self._set_size(normalized, len(data))
        return True

    def _within_limits(self, key: str, new_size: int) -> bool:
        # LEAN counts every in-memory entry plus every file under the root; the key's old size is replaced
        old_size = self._sizes.get(key)
        files = len(self._sizes) + (0 if old_size is not None else 1)
        total = self._total_size - (old_size or 0) + new_size
        return total <= self.max_size and files <= self.max_files

    def _set_size(self, key: str, size: Optional[int]) -> None:
        self._total_size -= self._sizes.pop(key, 0)
        if size is not None:
            self._sizes[key] = size
            self._total_size += size

    # -- reading -----------------------------------------------------------------------------------------------

    def read(self, key: str, encoding: Optional[str] = None) -> Optional[str]:
        """ObjectStore.Read: None (null) for a key registered by get_file_path that has no file yet."""
        self._alive("read")
        data = self._read_bytes(key)
        return None if data is None else data.decode(encoding or "utf-8", errors="replace")

    def read_string(self, key: str, encoding: Optional[str] = None) -> Optional[str]:
        self._alive("read_string")
        data = self._read_bytes(key)
        return None if data is None else data.decode(encoding or "utf-8", errors="replace")

    def read_bytes(self, key: str) -> Optional[bytes]:
        self._alive("read_bytes")
        return self._read_bytes(key)

    def _read_bytes(self, key: str) -> Optional[bytes]:
        """LocalObjectStore.ReadBytes: KeyNotFound when ContainsKey is False; a registered key with no file
        gives null."""
        normalized = normalize_key(key)
        data = self._memory.get(normalized)
        if data is None:
            data = self.disk.read(normalized)
            if data is None:
                if normalized in self._memory:
                    return None
                raise KeyError(
                    f"Object with path '{key}' was not found in the current project. "
                    "Please use ObjectStore.ContainsKey(key) to check if an object exists before attempting to read."
                )
            self._memory[normalized] = data
        return data

    def contains_key(self, key: str) -> bool:
        """LocalObjectStore.ContainsKey: True for a key registered by get_file_path with no content too."""
        self._alive("contains_key")
        normalized = normalize_key(key)
        return normalized in self._memory or self.disk.read(normalized) is not None

    @property
    def keys(self) -> List[str]:
        self._alive("keys")
        known = {k for k, v in self._memory.items() if v is not None}
        return sorted(known.union(self.disk.keys()))

    # -- deleting, paths, clearing ----------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Immediate on disk and in memory (a pending save of the key is dropped too)."""
        self._alive("delete")
        normalized = normalize_key(key)
        in_memory = self._memory.pop(normalized, None) is not None
        self._pending.pop(normalized, None)
        on_disk = self.disk.delete(normalized)
        self._set_size(normalized, None)
        return in_memory or on_disk

    def get_file_path(self, key: str) -> str:
        """LocalObjectStore.GetFilePath (LEAN 24863901): a key ContainsKey does not know is registered with
        null content (SaveBytes(path, null): the regex applies, nothing is flushed); a known key flushes every
        pending save (Persist()). Either way the path is returned: Persist/PersistData catch every write
        error (ErrorRaised), so a returned path proves nothing reached disk."""
        self._alive("get_file_path")
        normalized = normalize_key(key)
        if normalized not in self._memory and self.disk.read(normalized) is None:
            check_key(normalized)
            # SaveBytes(path, null) -> InternalSaveBytes: the same IsWithinStorageLimit check (the key counts as
            # one more file of 0 bytes); refused -> not registered, GetFilePath still returns the path
            if self._within_limits(normalized, 0):
                self._memory[normalized] = None  # registered with no content: never written, nothing flushed
                self._set_size(normalized, 0)
            else:
                self.errors.append(f"ObjectStore Persistence Error: limit reached registering '{normalized}'")
        else:
            self._flush(None)
        return self.disk.path_of(normalized)

    def clear(self) -> None:
        self._alive("clear")
        self._flush(None)
        self._memory.clear()

    # -- the test controls -------------------------------------------------------------------------------------

    def flush(self, keys: Optional[Iterable[str]] = None) -> int:
        """Write all pending keys, or only the pending ones among `keys`, to disk. Returns how many."""
        self._alive("flush")
        return self._flush(keys)

    def _flush(self, keys: Optional[Iterable[str]]) -> int:
        selected = sorted(self._pending) if keys is None else [normalize_key(k) for k in keys]
        written = 0
        for key in selected:
            data = self._pending.get(key)
            if data is None:
                continue
            for hook in list(self.hooks):
                hook("flush", key)
            try:
                if self.failing_writes is not None and self.failing_writes(key):
                    raise OSError(f"No space left on device: '{key}'")
                self.disk.write(key, data)
            except OSError as error:
                # LEAN: the exception ends this pass; later entries stay pending
                self.errors.append(f"ObjectStore Persistence Error: {error}")
                break
            del self._pending[key]
            written += 1
        return written

    def pending_keys(self) -> List[str]:
        return sorted(self._pending)

    def torn_write(self, key: str, keep_bytes: int) -> None:
        """Leave the first `keep_bytes` of the key's pending (or current) bytes on disk, as a dying write does."""
        normalized = normalize_key(key)
        data = self._pending.get(normalized)
        if data is None:
            data = self.disk.read(normalized) or b""
        torn = data[: max(0, keep_bytes)]
        self.disk.write(normalized, torn)
        if self._memory.get(normalized) is None:
            self._set_size(normalized, len(torn))

    def crash(self) -> SimulatedObjectStore:
        """The process dies: pending saves are lost. Returns the store a restarted process would see."""
        self._dead = True
        return SimulatedObjectStore(max_size=self.max_size, max_files=self.max_files, disk=self.disk)

    def stored_bytes(self) -> int:
        """What the quota counts: every known key's current size (memory first, then disk)."""
        return self._total_size

    def stored_files(self) -> int:
        return len(self._sizes)

    def disk_bytes(self) -> int:
        return sum(len(self.disk.read(k) or b"") for k in self.disk.keys())

    def disk_files(self) -> int:
        return len(self.disk.keys())

    def _alive(self, call: str) -> None:
        if self._dead:
            raise RuntimeError("this SimulatedObjectStore crashed; use the store crash() returned")
        self.calls[call] += 1


class SimulatedStorePort:
    """`persistence.ports.ObjectStorePort` over a SimulatedObjectStore (what main.LeanObjectStore does on LEAN).

    `flush()` returns True because LocalObjectStore's get_file_path really does flush; `flush_supported=False`
    models QC Cloud, where nothing can be promised."""

    def __init__(self, store: SimulatedObjectStore, *, flush_supported: bool = True) -> None:
        self.store = store
        self.flush_supported = flush_supported
        self.calls: Counter[str] = Counter()

    def save(self, key: str, text: str) -> bool:
        self.calls["save"] += 1
        return self.store.save(key, text)

    def read(self, key: str) -> str:
        self.calls["read"] += 1
        return self.store.read(key)

    def read_bytes(self, key: str) -> bytes:
        """What main.LeanObjectStore.read_bytes returns: ObjectStore.ReadBytes, the stored bytes unchanged."""
        self.calls["read_bytes"] += 1
        return self.store.read_bytes(key)

    def quota(self) -> tuple[int, int]:
        """(max files, max bytes): ObjectStore.MaxFiles / MaxSize, as main.LeanObjectStore.quota reads them."""
        return self.store.max_files, self.store.max_size

    def contains_key(self, key: str) -> bool:
        self.calls["contains_key"] += 1
        return self.store.contains_key(key)

    def delete(self, key: str) -> bool:
        self.calls["delete"] += 1
        return self.store.delete(key)

    def keys(self) -> List[str]:
        self.calls["keys"] += 1
        return list(self.store.keys)

    def flush(self) -> bool:
        self.calls["flush"] += 1
        if not self.flush_supported:
            return False
        self.store.flush()
        return True


__all__ = [
    "QC_BASE_MAX_FILES",
    "QC_BASE_MAX_SIZE",
    "DictDisk",
    "FolderDisk",
    "SimulatedCrash",
    "SimulatedObjectStore",
    "SimulatedStorePort",
    "check_key",
    "normalize_key",
]
