"""``memcache``: sessions in memcached, through pymemcache.

memcached is a cache, and a few of its habits would lose sessions silently:

* pymemcache sends writes fire-and-forget by default, which reports success
  even when memcached refused the value (one over the item size limit).
  Every write here waits for the server's answer.
* An expiry over 30 days is taken as an absolute unix time: a relative 60
  days would mean early 1970 and drop the record at once. Longer lifetimes
  are sent as absolute times. And expiry counts whole seconds, so each
  lifetime gets one more, lest a one-second tombstone vanish at once.
* Concurrent saves merge with check-and-set. ``read`` keeps the ``gets``
  token with the bytes it saw, so a save usually costs one ``cas``; a lost
  race reads, merges and tries again, a bounded number of times. memcached
  has no conditional delete, but a ``cas`` with a negative expiry stores an
  already-expired item only if nobody wrote meanwhile, which is one.
* Nor can it touch on a condition, yet a touch must not extend a tombstone
  a concurrent regenerate left. A tombstone carries its end in the item's
  client flags, which a meta-get (memcached 1.6 or later) returns while it
  touches: a touch that hit one gives it back its grace.
* Several servers share the sessions by HashClient's rendezvous hashing,
  but its failover is bypassed: while a server fails, HashClient answers
  "not found" instead of raising, then moves that server's keys elsewhere
  and back once it returns, where a session logged out meanwhile would live
  again. Each key stays on its own server; when that server is down, its
  sessions raise ``BackendUnavailable`` and the others carry on.
* A brand-new session has nothing stored anywhere yet, so its id is drawn
  again until its key lands on a server that answers: new visitors are
  served while a server is down. A server that just failed is passed over
  for :data:`DOWN_PAUSE` seconds, so that a hung one does not cost every
  new visitor a timeout.
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Mapping
from typing import Any, NamedTuple

from pymemcache.client.base import PooledClient, check_key_helper, normalize_server_spec
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError

from ..cookies import Keyring
from ..errors import BackendUnavailable, ConfigError, SessionConflict
from ..record import ChangeSet, Record
from .base import WriteResult, apply_changes
from .server import ServerBackend, new_session_id

#: Longest expiry memcached reads as relative seconds rather than a unix time.
RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600
#: Tries of the read-merge-cas cycle before giving up with SessionConflict.
MAX_ATTEMPTS = 32
#: Ids drawn at most for one new session before giving up.
MAX_DRAWS = 64
#: Seconds a server that failed is passed over when placing new sessions.
DOWN_PAUSE = 5.0
#: How a pooled connection to a server process that has since died fails,
#: at once. Whatever write it carried died with that process's memory, so
#: trying again cannot apply it twice.
_DEAD_CONNECTION = (MemcacheUnexpectedCloseError, ConnectionResetError, BrokenPipeError)


class _Seen(NamedTuple):
    """What ``read`` saw: the cas token and the record's bytes."""

    token: bytes
    raw: bytes


class MemcacheBackend(ServerBackend):
    evicts = True

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        servers = list(options["servers"])
        self.address = ",".join(servers)
        try:
            specs = [normalize_server_spec(server) for server in servers]
        except ValueError as error:
            raise ConfigError(f"tipsessions.{name}.servers", str(error)) from error
        try:
            # A session's key is the prefix and 64 hex digits.
            check_key_helper(str(options["prefix"]) + "0" * 64, allow_unicode_keys=False)
        except MemcacheError as error:
            raise ConfigError(f"tipsessions.{name}.prefix", str(error)) from error
        client_options: dict[str, Any] = {
            "connect_timeout": options["connect_timeout"],
            "timeout": options["timeout"],
            "default_noreply": False,
        }
        self._failed_at: dict[str, float] = {}
        if len(specs) == 1:
            self._ring = None
            self._pools = {servers[0]: PooledClient(specs[0], **client_options)}
        else:
            cluster = HashClient(specs, use_pooling=True, **client_options)
            self._ring, self._pools = cluster.hasher, cluster.clients
        # Applications have no shutdown hook: close the pooled sockets when
        # the backend goes away instead of leaving them to the collector.
        weakref.finalize(self, close_all, list(self._pools.values()))

    def read(self, key: str) -> tuple[Record | None, Any]:
        raw, token = self._run(key, "gets", key)
        record = None if raw is None else self._decode(key, raw)
        return (None, None) if record is None else (record, _Seen(token, raw))

    def put(self, key: str, record: Record, ttl: int) -> None:
        # A tombstone keeps its end in its client flags, for ``touch``.
        flags = int(time.time()) + ttl + 1 if record.tombstone else 0
        stored = self._run(
            key, "set", key, record.to_json(), expire=expiry(ttl), flags=flags, noreply=False
        )
        if not stored:
            raise self._unavailable(key, "the server did not store the session")

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        seen = version if isinstance(version, _Seen) else None
        for attempt in range(MAX_ATTEMPTS):
            if seen is None:
                raw, token = self._run(key, "gets", key)
                if raw is None:
                    return WriteResult.GONE
                seen = _Seen(token, raw)
            result, merged = apply_changes(self._decode(key, seen.raw), changes)
            if result is WriteResult.GONE:
                return result
            # DELETED stores an already-expired item: a delete that checks the token.
            value, expire = (b"{}", -1) if merged is None else (merged.to_json(), expiry(ttl))
            stored = self._run(key, "cas", key, value, seen.token, expire=expire, noreply=False)
            if stored:
                return result
            if stored is None:  # NOT_FOUND: deleted or expired since it was read
                return WriteResult.GONE
            seen = None
            # Spread the contenders out so that one of them wins the next round.
            time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 5)))
        raise SessionConflict(self.name, MAX_ATTEMPTS)

    def place_new(self, record: Record, ttl: int) -> tuple[str, str]:
        failures: dict[str, BackendUnavailable] = {}
        recent = {
            server
            for server, when in list(self._failed_at.items())
            if time.monotonic() - when < DOWN_PAUSE
        }
        if recent >= set(self._pools):
            recent = set()  # all failed lately: try them again rather than give up
        # Each draw lands on a server at random: with one server of N down,
        # a handful of draws all but surely finds a live one.
        for _ in range(MAX_DRAWS):
            session_id = new_session_id()
            key = self.storage_key(session_id)
            server = self._server(key)
            if server in failures or server in recent:
                continue
            try:
                self.put(key, record, ttl)
            except BackendUnavailable as error:
                if not isinstance(error.__cause__, (OSError, *_DEAD_CONNECTION)):
                    raise  # the server answered: refused the value, say
                failures[server] = error
                if len(failures) == len(self._pools):
                    break
                continue
            return session_id, key
        if failures:
            raise next(iter(failures.values()))
        raise self._unavailable(key, "no server to place a new session on")

    def delete(self, key: str) -> None:
        self._run(key, "delete", key, noreply=False)

    def touch(self, key: str, ttl: int) -> bool:
        # memcached cannot touch on a condition, but one meta-get extends the
        # expiry and returns the client flags, which tell a tombstone.
        reply = self._run(key, "raw_command", f"mg {key} T{expiry(ttl)} f", b"\r\n")
        if reply.startswith(b"EN"):  # no such item
            return False
        flags = [token for token in reply.split() if token.startswith(b"f")]
        if len(flags) != 1 or not flags[0][1:].isdigit():
            raise self._unavailable(key, f"unexpected reply to mg: {reply[:40]!r}")
        tombstone_end = int(flags[0][1:])
        if tombstone_end:
            # Made a tombstone by a concurrent request: give its grace back.
            self._run(key, "touch", key, tombstone_end, noreply=False)
            return False
        return True

    def _run(self, key: str, command: str, *args: Any, **kwargs: Any) -> Any:
        """``command`` of the pooled client of ``key``'s server, errors translated."""
        pool = self._pools[self._server(key)]
        # After a restart every idle connection is dead: go through them to a
        # new one rather than fail a request per connection. Each failed one
        # leaves the pool.
        tries = len(pool.client_pool.free) + 1
        for tries_left in range(tries, 0, -1):
            try:
                return getattr(pool, command)(*args, **kwargs)
            except _DEAD_CONNECTION as error:
                if tries_left == 1:
                    self._failed_at[self._server(key)] = time.monotonic()
                    raise self._unavailable(key, describe(error)) from error
            except OSError as error:
                self._failed_at[self._server(key)] = time.monotonic()
                raise self._unavailable(key, describe(error)) from error
            except MemcacheError as error:
                raise self._unavailable(key, describe(error)) from error

    def _server(self, key: str) -> str:
        return next(iter(self._pools)) if self._ring is None else str(self._ring.get_node(key))

    def _unavailable(self, key: str, reason: str) -> BackendUnavailable:
        return BackendUnavailable(self.name, self.address, f"{self._server(key)}: {reason}")

    def _decode(self, key: str, raw: bytes) -> Record | None:
        try:
            return Record.from_json(raw)
        except ValueError as error:
            self.log_undecodable(f"under {key!r}", type(error).__name__)
            return None


def expiry(ttl: int) -> int:
    """``ttl`` as memcached reads it, so that the item lives at least ``ttl`` seconds.

    memcached's clock ticks in whole seconds: an item set for N seconds just
    before a tick goes after N - 1, hence the extra second. Beyond 30 days
    only a unix time works.
    """
    seconds = ttl + 1
    return seconds if seconds <= RELATIVE_EXPIRY_LIMIT else int(time.time()) + seconds


def close_all(pools: list[Any]) -> None:
    for pool in pools:
        pool.close()


def describe(error: BaseException) -> str:
    if error.args and isinstance(error.args[0], bytes):
        # memcached's own words, such as "object too large for cache".
        return error.args[0].decode("ascii", "replace")
    return str(error) or type(error).__name__
