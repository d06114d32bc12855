"""``datastore``: sessions in Google Cloud Datastore (or Firestore in Datastore mode).

One entity per session, of kind ``kind`` in ``namespace``, named by the
storage key, with three properties:

* ``data``: the record's JSON, unindexed text (indexed strings stop at
  1500 bytes, and nobody queries session contents);
* ``expires``: an indexed UTC datetime. Datastore deletes nothing by
  itself, so it is checked on every load (expired reads as missing) and
  ``python -m tipsessions purge`` deletes by it; a TTL policy on
  ``expires`` lets Datastore delete expired sessions as well;
* ``tombstone``: True for an id retired by ``regenerate_id()``.

An update or a touch is a transaction that begins with its read: two
requests. How they reach Datastore is in :mod:`~tipsessions.backends.datastore_client`.
"""

from __future__ import annotations

# google-cloud-datastore ships py.typed, yet most of its functions are unannotated.
# mypy: disable-error-code="no-untyped-call"
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from google.cloud import datastore
from google.cloud.datastore.query import PropertyFilter

from ..cookies import Keyring
from .datastore_client import Connection
from .options import BackendOptions
from .records import TOMBSTONE, RecordBackend

#: Datastore takes at most 500 mutations per commit.
MAX_BATCH = 500


@dataclass(frozen=True)
class DatastoreOptions(BackendOptions):
    #: ``None`` takes the project from the environment.
    project: str | None = None
    namespace: str | None = None
    kind: str = "Session"
    #: Seconds each call may take, retries included.
    timeout: float = 5.0


class _Scope(threading.local):
    """Whether this thread is inside atomic(), and the transaction a read there began."""

    open = False
    transaction: Any = None


class DatastoreBackend(RecordBackend):
    """Sessions as Datastore entities, merged in transactions."""

    options_class = DatastoreOptions
    options: DatastoreOptions
    max_attempts = 20
    first_delay = 0.02
    max_delay = 0.5

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self.kind = self.options.kind
        self._connection = Connection(name, self.options)
        self.client, self.address = self._connection.client, self._connection.address
        self._scope = _Scope()

    @contextmanager
    def atomic(self, key: str) -> Iterator[None]:
        self._scope.open = True
        try:
            yield
            transaction = self._scope.transaction
            if transaction is not None:
                with self._connection.talking(racing=True):
                    if transaction.mutations:
                        # No retry: a commit that may have been applied cannot be replayed.
                        transaction.commit(timeout=self.options.timeout)
                    else:
                        # Released at once: under pessimistic concurrency the
                        # read holds a lock that would block other writers.
                        transaction.rollback(timeout=self.options.timeout)
        finally:
            self._scope.open, self._scope.transaction = False, None

    def get(self, key: str) -> tuple[bytes | None, Any]:
        if self._scope.open:
            # Begun by this read (begin_later): one request, not two.
            self._scope.transaction = self.client.transaction(begin_later=True)
        transaction = self._scope.transaction
        with self._connection.talking(racing=transaction is not None):
            entity = self._connection.send(self.client.get, self._key(key), transaction=transaction)
        if entity is None:
            return None, None
        data, expires = entity.get("data"), entity.get("expires")
        if not isinstance(expires, datetime):
            return b"", None  # does not decode: logged and read as missing
        if expires.timestamp() <= time.time():
            return None, None
        if entity.get("tombstone"):
            return TOMBSTONE, None
        return (data.encode() if isinstance(data, str) else data), None

    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        entity = datastore.Entity(self._key(key), exclude_from_indexes=("data",))
        entity["data"] = raw.decode()
        entity["expires"] = datetime.fromtimestamp(time.time() + ttl, timezone.utc)
        entity["tombstone"] = raw == TOMBSTONE
        self._write("put", entity)

    def remove(self, key: str, version: Any) -> None:
        self._write("delete", self._key(key))

    def _write(self, method: str, target: Any) -> None:
        """Into the scope's transaction, if a read began one; else a request of its own."""
        transaction = self._scope.transaction
        if transaction is not None:
            getattr(transaction, method)(target)
        else:
            with self._connection.talking():
                self._connection.send(getattr(self.client, method), target)

    def _key(self, key: str) -> Any:
        return self.client.key(self.kind, key)

    def count_expired(self, before: float) -> int | None:
        # Unknown: the emulator has no aggregation queries, and counting on
        # Datastore costs as many index reads as there are expired sessions.
        return None

    def purge_expired(self, before: float, batch_size: int) -> Iterator[int]:
        """Delete the sessions expired at ``before``, yielding each batch's count.

        Nothing revives an expired session (reads, updates and touches all
        see it as missing), so deleting without a transaction loses nothing.
        """
        query = self.client.query(kind=self.kind)
        query.keys_only()
        expired = datetime.fromtimestamp(before, timezone.utc)
        query.add_filter(filter=PropertyFilter("expires", "<=", expired))
        call = {"retry": self._connection.retry, "timeout": self.options.timeout}
        while True:
            with self._connection.talking():
                found = query.fetch(limit=min(batch_size, MAX_BATCH), **call)
                keys = [entity.key for entity in found]
                if not keys:
                    return
                self.client.delete_multi(keys, **call)
            yield len(keys)
