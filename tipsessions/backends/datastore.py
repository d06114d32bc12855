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

Quirks this module works around:

* The client's default retry keeps trying for up to 60 s. Every call here
  passes an explicit ``timeout`` and a retry with that same deadline, so an
  unreachable server becomes :class:`~tipsessions.BackendUnavailable` after
  about ``timeout`` seconds.
* gRPC's reconnect backoff grows to two minutes, so after an outage the
  client kept failing long after the server was back (10 s after a 6 s
  outage, measured against the emulator). The channel is built here with a
  one-second cap. Even so, a request that arrives while the channel waits
  out its backoff fails at once with "failed to connect to all addresses",
  and the wait can outlast a short timeout: with a 0.3 s timeout, 20 of 30
  first requests after a flap failed. So a request that fails
  to connect moves the backend to a fresh channel, with a subchannel of its
  own, and tries again within the same deadline. The old channel is closed
  once any call still on it has met its deadline.
* ``update`` and ``touch`` are read-modify-write transactions. The
  transaction begins with its read (``begin_later``), so the common case
  is two requests, and a contended one is retried with jittered backoff.
"""

from __future__ import annotations

# google-cloud-datastore ships py.typed, yet most of its functions are unannotated.
# mypy: disable-error-code="no-untyped-call"
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.cloud import datastore
from google.cloud._helpers import make_secure_channel
from google.cloud.datastore.query import PropertyFilter
from google.cloud.datastore_v1.services.datastore import DatastoreClient
from google.cloud.datastore_v1.services.datastore.transports import DatastoreGrpcTransport

from ..cookies import Keyring
from ..errors import BackendUnavailable, ConfigError, SessionConflict
from ..record import ChangeSet, Record
from .base import WriteResult, apply_changes
from .server import ServerBackend

#: Attempts of a contended ``update`` before :class:`SessionConflict`.
MAX_ATTEMPTS = 20
#: Datastore takes at most 500 mutations per commit.
MAX_BATCH = 500
#: Where the emulator's project is found; ``gcloud beta emulators datastore
#: env-init`` sets the first two.
_EMULATOR_PROJECT_VARIABLES = ("DATASTORE_PROJECT_ID", "DATASTORE_DATASET", "GOOGLE_CLOUD_PROJECT")
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Channels to one address share a subchannel, and its backoff, unless
    # each has a pool of its own: a fresh channel must really connect anew.
    ("grpc.use_local_subchannel_pool", 1),
)
#: A channel younger than this is fresh enough: it has barely tried.
_FRESH_CHANNEL_AGE = 0.1
#: ``retry=None`` would mean the client's default retry, of up to 60 s.
_NO_RETRY = Retry(predicate=if_exception_type())


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


class DatastoreBackend(ServerBackend):
    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self.kind = str(options.get("kind", "Session"))
        self.timeout = float(options.get("timeout", 5.0))
        # Datastore answers UNAVAILABLE for transient failures; anything
        # else would fail again. Only idempotent requests get this retry.
        self._retry = Retry(
            predicate=if_exception_type(api_exceptions.ServiceUnavailable),
            initial=0.05,
            maximum=0.5,
            timeout=self.timeout,
        )
        emulator = os.environ.get("DATASTORE_EMULATOR_HOST")
        project = options.get("project")
        if emulator and project is None:
            # Looked up here: the client would ask for credentials (and probe
            # a metadata server) that an emulator does not need.
            found = (os.environ.get(variable) for variable in _EMULATOR_PROJECT_VARIABLES)
            project = next((value for value in found if value), None)
            if project is None:
                raise ConfigError(
                    f"tipsessions.{name}.project",
                    "is required with the emulator unless one of "
                    f"{', '.join(_EMULATOR_PROJECT_VARIABLES)} is set",
                )
        try:
            self.client = datastore.Client(project=project, namespace=options.get("namespace"))
        except DefaultCredentialsError as error:
            raise ConfigError(
                f"tipsessions.{name}", f"no Google Cloud credentials: {error}"
            ) from error
        except OSError as error:
            # "Project was not passed and could not be determined from the environment"
            raise ConfigError(f"tipsessions.{name}.project", str(error)) from error
        self.address = emulator or f"datastore.googleapis.com (project {self.client.project})"
        self._emulator = bool(emulator)
        self._channel_lock = threading.Lock()
        self._channel_born = 0.0
        #: The channel in use, in a list that the finalizer below shares.
        self._channel: list[grpc.Channel] = []
        if self.client._use_grpc:
            self._new_channel()
        # Applications have no shutdown hook: close the channel when the
        # backend goes away instead of leaving it to the collector.
        weakref.finalize(self, _close_channels, self._channel)

    def _new_channel(self) -> None:
        """Send the next requests over a new gRPC channel; no connection is made yet."""
        host = urlparse(self.client.base_url).netloc
        if self._emulator:
            channel = grpc.insecure_channel(host, options=_CHANNEL_OPTIONS)
        else:
            user_agent = self.client._client_info.to_user_agent()
            credentials = self.client._credentials
            channel = make_secure_channel(credentials, user_agent, host, _CHANNEL_OPTIONS)
        self.client._datastore_api_internal = DatastoreClient(
            transport=DatastoreGrpcTransport(channel=channel),
            client_info=self.client._client_info,
        )
        for old in self._channel:
            # Closing cancels the calls still on it: let them meet their deadline first.
            closer = threading.Timer(self.timeout + 0.1, old.close)
            closer.daemon = True
            closer.start()
        self._channel[:] = [channel]
        self._channel_born = time.monotonic()

    def _refresh_channel(self, error: Exception) -> None:
        """Move to a fresh channel after a failed connect, unless another thread just did.

        Only a failed connect: an UNAVAILABLE answered by the service
        itself says nothing against the channel.
        """
        if not self.client._use_grpc or "failed to connect" not in str(error):
            return
        with self._channel_lock:
            if time.monotonic() - self._channel_born >= _FRESH_CHANNEL_AGE:
                self._new_channel()

    def _send(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)`` with the deadline of one storage call.

        UNAVAILABLE is retried, on a fresh channel, until the deadline; only
        idempotent requests may be sent this way.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                return call(*args, retry=_NO_RETRY, timeout=deadline - time.monotonic(), **kwargs)
            except api_exceptions.ServiceUnavailable as error:
                if time.monotonic() + delay >= deadline:
                    raise
                self._refresh_channel(error)
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextmanager
    def _talking(self) -> Iterator[None]:
        try:
            yield
        except (api_exceptions.GoogleAPIError, GoogleAuthError) as error:
            reason = f"{type(error).__name__}: {error}"
            raise BackendUnavailable(self.name, self.address, reason) from error

    def _call(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self.timeout}

    def _record(self, entity: Any) -> Record | None:
        if entity is None:
            return None
        try:
            expires = entity["expires"]
            if expires.timestamp() <= time.time():
                return None
            if entity.get("tombstone"):
                return Record(tombstone=True)
            return Record.from_json(entity["data"])
        except (KeyError, AttributeError, TypeError, ValueError) as error:
            self.log_undecodable(f"in entity {entity.key.name}", type(error).__name__)
            return None

    def _entity(self, key: str, record: Record, ttl: int) -> Any:
        entity = datastore.Entity(self.client.key(self.kind, key), exclude_from_indexes=("data",))
        entity["data"] = record.to_json().decode()
        entity["expires"] = _utc(time.time() + ttl)
        entity["tombstone"] = record.tombstone
        return entity

    def read(self, key: str) -> tuple[Record | None, Any]:
        with self._talking():
            entity = self._send(self.client.get, self.client.key(self.kind, key))
        return self._record(entity), None

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self._talking():
            self._send(self.client.put, self._entity(key, record, ttl))

    def delete(self, key: str) -> None:
        with self._talking():
            self._send(self.client.delete, self.client.key(self.kind, key))

    def _transaction(
        self, key: str, change: Callable[[Any, Any], WriteResult], attempts: int = MAX_ATTEMPTS
    ) -> WriteResult:
        """Run ``change(transaction, entity)`` in a transaction until it commits.

        ``change`` returns GONE when it has nothing to write.
        """
        with self._talking():
            for attempt in range(1, attempts + 1):
                transaction = self.client.transaction(begin_later=True)
                entity_key = self.client.key(self.kind, key)
                try:
                    entity = self._send(self.client.get, entity_key, transaction=transaction)
                    result = change(transaction, entity)
                    if result is WriteResult.GONE:
                        # Released at once: under pessimistic concurrency the
                        # read holds a lock that would block other writers.
                        transaction.rollback(timeout=self.timeout)
                    else:
                        # No request-level retry: a commit that may have been
                        # applied cannot be replayed.
                        transaction.commit(timeout=self.timeout)
                    return result
                except api_exceptions.Conflict:
                    # Aborted: another request wrote the entity meanwhile.
                    if attempt < attempts:
                        time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
            raise SessionConflict(self.name, attempts)

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        def merge(transaction: Any, entity: Any) -> WriteResult:
            result, merged = apply_changes(self._record(entity), changes)
            if merged is not None:
                transaction.put(self._entity(key, merged, ttl))
            elif result is WriteResult.DELETED:
                transaction.delete(entity.key)
            return result

        return self._transaction(key, merge)

    def touch(self, key: str, ttl: int) -> bool:
        def extend(transaction: Any, entity: Any) -> WriteResult:
            # Expired or retired stays so: touch never revives a session.
            record = self._record(entity)
            if record is None or record.tombstone:
                return WriteResult.GONE
            entity["expires"] = _utc(time.time() + ttl)
            transaction.put(entity)
            return WriteResult.WRITTEN

        # A lost race answers False: the concurrent write may be the
        # tombstone of a regenerate, whose id must not be re-issued.
        try:
            return self._transaction(key, extend, attempts=1) is WriteResult.WRITTEN
        except SessionConflict:
            return False

    # -- purge (python -m tipsessions purge) ----------------------------------

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
        query.add_filter(filter=PropertyFilter("expires", "<=", _utc(before)))
        while True:
            with self._talking():
                found = query.fetch(limit=min(batch_size, MAX_BATCH), **self._call())
                keys = [entity.key for entity in found]
                if not keys:
                    return
                self.client.delete_multi(keys, **self._call())
            yield len(keys)


def _close_channels(channels: list[grpc.Channel]) -> None:
    for channel in channels:
        channel.close()
