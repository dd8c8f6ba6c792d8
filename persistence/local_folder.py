"""Read-only ObjectStore ports for research: a storage folder offline, QuantBook's object_store in the cloud.

LEAN maps a key straight to `<root>/<key>` (LocalObjectStore.PathForKey), so the folder that `lean backtest` mounts as
`/Storage` (or the offline harness writes with `--storage`) can be read back here without LEAN. research.ipynb
uses `LocalFolderStore` offline and `ReadOnlyObjectStore(qb.object_store)` in QuantConnect's research
environment.

Both refuse to write: research must never change the state a live algorithm will load. A refused save returns
False (LEAN's own signal for "not saved", LocalObjectStore.HandleStorageLimitExceeded) instead of raising, so
`StateStore.load_all`, which copies bad
records to quarantine keys, still finishes and just reports that the copy was not written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List


class LocalFolderStore:
    """ObjectStorePort over a storage folder; reads only."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)
        self.refused_writes: List[str] = []

    def _path(self, key: str) -> Path:
        # LEAN's normalisation: strip leading '.', then leading slashes, and treat '\' as '/'
        normalized = key.lstrip(".").lstrip("/\\").replace("\\", "/")
        return self._root / normalized

    def save(self, key: str, text: str) -> bool:
        self.refused_writes.append(key)
        return False

    def read(self, key: str) -> str:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(f"Object with path '{key}' was not found in {self._root}")
        # LEAN's read decodes UTF-8 and never raises on bad bytes (U+FFFD); keep that
        return path.read_bytes().decode("utf-8", errors="replace")

    def read_bytes(self, key: str) -> bytes:
        """The file's bytes unchanged (LEAN's ObjectStore.ReadBytes): bytes that are not UTF-8 stay visible."""
        path = self._path(key)
        if not path.is_file():
            raise KeyError(f"Object with path '{key}' was not found in {self._root}")
        return path.read_bytes()

    def contains_key(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        self.refused_writes.append(key)
        return False

    def keys(self) -> List[str]:
        if not self._root.is_dir():
            return []
        return sorted(path.relative_to(self._root).as_posix() for path in self._root.rglob("*") if path.is_file())

    def flush(self) -> bool:
        return False  # nothing is ever pending here


class ReadOnlyObjectStore:
    """ObjectStorePort over LEAN's ObjectStore (QuantBook's `qb.object_store`) that never writes."""

    def __init__(self, object_store: Any) -> None:
        self._object_store = object_store
        self.refused_writes: List[str] = []

    def save(self, key: str, text: str) -> bool:
        self.refused_writes.append(key)
        return False

    def read(self, key: str) -> str:
        return str(self._object_store.read(key))

    def read_bytes(self, key: str) -> bytes:
        data = self._object_store.read_bytes(key)  # ObjectStore.ReadBytes (a System.Byte[] in QuantBook)
        if data is None:
            raise KeyError(key)
        return bytes(bytearray(data))

    def contains_key(self, key: str) -> bool:
        return bool(self._object_store.contains_key(key))

    def delete(self, key: str) -> bool:
        self.refused_writes.append(key)
        return False

    def keys(self) -> List[str]:
        return [str(key) for key in self._object_store.keys]

    def flush(self) -> bool:
        return False


__all__ = ["LocalFolderStore", "ReadOnlyObjectStore"]
