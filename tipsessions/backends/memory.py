"""``memory``: sessions in this process, for development and tests.

Lost at restart and not shared between processes (several workers each see
their own sessions), so never the choice in production. Records are kept as
JSON bytes, not objects, so a handler can never mutate a stored session
behind the backend's back, and the behaviour matches the real servers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..cookies import Keyring
from ..record import ChangeSet, Record
from .base import WriteResult, apply_changes
from .server import ServerBackend


class MemoryBackend(ServerBackend):
    """A bounded, expiring, thread-safe dict; the least recently used goes first."""

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self.max_entries = int(options.get("max_entries", 10000))
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: str) -> Record | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, raw = entry
        if expires <= time.time():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        try:
            return Record.from_json(raw)
        except ValueError as error:
            self.log_undecodable(f"under {key!r}", type(error).__name__)
            return None

    def _set(self, key: str, record: Record, ttl: int) -> None:
        self._entries[key] = (time.time() + ttl, record.to_json())
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def read(self, key: str) -> tuple[Record | None, Any]:
        with self._lock:
            return self._get(key), None

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self._lock:
            self._set(key, record, ttl)

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        with self._lock:
            result, merged = apply_changes(self._get(key), changes)
            if merged is not None:
                self._set(key, merged, ttl)
            elif result is WriteResult.DELETED:
                del self._entries[key]
            return result

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def touch(self, key: str, ttl: int) -> bool:
        with self._lock:
            record = self._get(key)
            if record is None or record.tombstone:
                return False
            self._entries[key] = (time.time() + ttl, self._entries[key][1])
            return True
