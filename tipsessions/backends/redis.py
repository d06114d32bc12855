"""``redis``: sessions in Redis, through redis-py.

Each session is a Redis hash, so that a save merges its changes into the
stored session inside Redis, in one round trip, with no read-modify-write
race (the layout is in :mod:`~tipsessions.backends.redis_hash`).

Timeouts are explicit and redis-py retries only a dropped connection, once
and at once: its default retries with backoff would turn a hung server into
a wait of many seconds. There is no periodic health check: the pool already
replaces a connection the server closed when it hands it out, and a PING
would add a round trip to the request that sends it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, cast

from redis.commands.core import Script
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..cookies import Keyring
from ..errors import BackendUnavailable
from ..record import ChangeSet, Record
from .base import WriteResult
from .options import BackendOptions
from .redis_client import check_topology, close_all, describe, topology
from .redis_hash import MERGE_SCRIPT, PUT_SCRIPT, TOUCH_SCRIPT, decode, merge_args, put_args
from .server import ServerBackend, storage_digest


class _Client(NamedTuple):
    """A redis-py client and the scripts registered on it."""

    redis: Any
    put: Script
    merge: Script
    touch: Script


@dataclass(frozen=True)
class RedisOptions(BackendOptions):
    #: Where Redis is. With ``cluster`` the first startup node; with
    #: ``sentinels`` only its database, password and TLS scheme apply.
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "tipsess:"
    connect_timeout: float = 1.0
    socket_timeout: float = 1.0
    #: ``True``: a Redis Cluster, through redis-py's ``RedisCluster``.
    cluster: bool = False
    #: More cluster nodes to start from, for when the URL's is down.
    startup_nodes: list[tuple[str, int]] = field(default_factory=list)
    #: ``[("host", port), ...]``: find the master through these Sentinels.
    sentinels: list[tuple[str, int]] | None = None
    #: The name the Sentinels know the master by.
    service_name: str | None = None

    def check(self, where: str) -> RedisOptions:
        checked = replace(self, **check_topology(self, where))
        topology(where, checked)  # what the URL says, without connecting
        return checked


class RedisBackend(ServerBackend):
    """Sessions as Redis hashes, merged by scripts inside Redis."""

    options_class = RedisOptions
    options: RedisOptions

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self._topology = topology(f"tipsessions.{name}", self.options)
        self.address = self._topology.address
        self._client: _Client | None = None
        self._lock = threading.Lock()
        # Applications have no shutdown hook: close the pooled sockets when
        # the backend goes away instead of leaving them to the collector.
        self._built: list[Any] = []
        weakref.finalize(self, close_all, self._built)

    def storage_key(self, session_id: str) -> str:
        # The braces make the digest the key's hash tag: whatever a session
        # stores lands in one Redis Cluster slot, so a script may touch all
        # of it atomically.
        return f"{self.options['prefix']}{{{storage_digest(session_id)}}}"

    def read(self, key: str) -> tuple[Record | None, Any]:
        with self._talking() as client:
            try:
                # decode_responses is off: names and values come back as bytes.
                fields = cast("dict[bytes, bytes]", client.redis.hgetall(key))
            except ResponseError as error:
                if not str(error).startswith("WRONGTYPE"):
                    raise
                return self._undecodable(key, "not a hash")
        if not fields:
            return None, None
        try:
            return decode(fields), None
        except ValueError as error:
            return self._undecodable(key, type(error).__name__)

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self._talking() as client:
            client.put(keys=[key], args=put_args(record, ttl))

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        with self._talking() as client:
            outcome = client.merge(keys=[key], args=merge_args(changes, ttl))
        return WriteResult(outcome.decode())

    def delete(self, key: str) -> None:
        with self._talking() as client:
            client.redis.delete(key)

    def touch(self, key: str, ttl: int) -> bool:
        with self._talking() as client:
            return bool(client.touch(keys=[key], args=[ttl]))

    @contextmanager
    def _talking(self) -> Iterator[_Client]:
        try:
            client = self._client or self._connect()
            self._topology.follow(client.redis)
            yield client
        except (RedisError, RedisClusterException, OSError) as error:
            raise BackendUnavailable(self.name, self.address, describe(error)) from error
        except (LookupError, TypeError, ValueError, AttributeError) as error:
            # Slips inside the client, seen while a cluster reshapes itself;
            # the contract allows only typed errors out of a backend.
            reason = f"unexpected {type(error).__name__} in redis-py: {error}"
            raise BackendUnavailable(self.name, self.address, reason) from error

    def _connect(self) -> _Client:
        """The client, built on first use: a cluster connects as it is built."""
        with self._lock:
            if self._client is None:
                client = self._topology.build()
                self._built.append(client)
                self._client = _Client(
                    client,
                    client.register_script(PUT_SCRIPT),
                    client.register_script(MERGE_SCRIPT),
                    client.register_script(TOUCH_SCRIPT),
                )
            return self._client

    def _undecodable(self, key: str, reason: str) -> tuple[None, None]:
        self.log_undecodable(f"under {key!r}", reason)
        return None, None
