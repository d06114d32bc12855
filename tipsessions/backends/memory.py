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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..cookies import Keyring
from .options import BackendOptions
from .records import RecordBackend


@dataclass(frozen=True)
class MemoryOptions(BackendOptions):
    #: Sessions kept before the least recently used is evicted.
    max_entries: int = 10000


class MemoryBackend(RecordBackend):
    """A bounded, expiring, thread-safe dict; the least recently used goes first."""

    options_class = MemoryOptions
    options: MemoryOptions

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        # Reentrant: the calls below run inside atomic() and on their own.
        self._lock = threading.RLock()

    def atomic(self, key: str) -> AbstractContextManager[Any]:
        return self._lock

    def get(self, key: str) -> tuple[bytes | None, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > time.time():
                self._entries.move_to_end(key)
                return entry[1], None
            self._entries.pop(key, None)  # expired, if there at all
            return None, None

    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        with self._lock:
            self._entries[key] = (time.time() + ttl, raw)
            self._entries.move_to_end(key)
            while len(self._entries) > self.options.max_entries:
                self._entries.popitem(last=False)

    def remove(self, key: str, version: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
