"""What persistence needs from the outside world, as a protocol (logging is core.ports.LogPort).

`ObjectStorePort` is the subset of LEAN's `ObjectStore` the template uses, with LEAN's semantics
(Engine/Storage/LocalObjectStore.cs): text only, `save` returns False instead of raising when over
quota, writes sit in memory until a flush, `read` of a missing key raises. main.py wraps
`self.object_store` in it; tests use the offline harness's simulated store.
"""

from __future__ import annotations

from typing import List, Protocol


class ObjectStorePort(Protocol):
    def save(self, key: str, text: str) -> bool:
        """Store text under key (memory first). False when a limit is reached; raises on a bad key."""
        ...

    def read(self, key: str) -> str:
        """The text under key; raises KeyError-like errors when it is missing."""
        ...

    def contains_key(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Deletes at once (memory and disk), unlike save."""
        ...

    def keys(self) -> List[str]:
        """Every key the store knows (LEAN: the whole workspace/organisation, not just ours)."""
        ...

    def flush(self) -> bool:
        """Push pending saves to disk now if the backend can (LocalObjectStore: get_file_path does);
        False when it cannot say, e.g. QC Cloud's store."""
        ...
