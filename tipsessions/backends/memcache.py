"""``memcache``: sessions in memcached, through pymemcache.

memcached is a cache, and a few of its habits would lose sessions silently:

* pymemcache writes fire-and-forget by default; here every write waits for
  the answer, which may be a refusal (see
  :mod:`~tipsessions.backends.memcache_client`, which also keeps each key on
  its own server, even while that one is down).
* An expiry over 30 days is read as a unix time, so longer lifetimes are
  sent as one; and it counts whole seconds, so each gets one more.
* Saves merge by check-and-set with the ``gets`` token of the load: one
  ``cas`` when nobody wrote meanwhile. There is no conditional delete, but a
  ``cas`` of an already-expired item is one.
* Nor is there a conditional touch, yet a touch must not extend a tombstone.
  A tombstone's client flags hold its end, and a meta-get (memcached 1.6)
  returns them while it touches: a touch that hit one gives its grace back.
* A new session's id is drawn again until its key lands on a server that
  answers, and one that just failed is passed over for :data:`DOWN_PAUSE`
  seconds, so that a hung server does not cost every new visitor a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pymemcache.client.base import check_key_helper, normalize_server_spec
from pymemcache.exceptions import MemcacheError

from ..cookies import Keyring
from ..errors import BackendUnavailable, ConfigError
from ..record import Record
from .memcache_client import Servers, expiry, unreachable
from .options import BackendOptions
from .records import TOMBSTONE, LostRace, RecordBackend
from .server import new_session_id

#: Ids drawn at most for one new session before giving up.
MAX_DRAWS = 64
#: Seconds a server that failed is passed over when placing new sessions.
DOWN_PAUSE = 5.0


@dataclass(frozen=True)
class MemcacheOptions(BackendOptions):
    #: ``"host:port"`` strings; several spread sessions by hashing.
    servers: list[str] = field(default_factory=lambda: ["127.0.0.1:11211"])
    prefix: str = "tipsess:"
    connect_timeout: float = 1.0
    timeout: float = 1.0

    def check(self, where: str) -> MemcacheOptions:
        servers = [self.servers] if isinstance(self.servers, str) else self.servers
        if not servers or not all(isinstance(s, str) and ":" in s for s in servers):
            raise ConfigError(f"{where}.servers", 'must be a list of "host:port" strings')
        try:
            for server in servers:
                normalize_server_spec(server)
        except ValueError as error:
            raise ConfigError(f"{where}.servers", str(error)) from error
        try:  # a session's key is the prefix and 64 hex digits
            check_key_helper(self.prefix + "0" * 64, allow_unicode_keys=False)
        except MemcacheError as error:
            raise ConfigError(f"{where}.prefix", str(error)) from error
        return replace(self, servers=list(servers))


class MemcacheBackend(RecordBackend):
    """Sessions as memcached items, merged by check-and-set."""

    options_class = MemcacheOptions
    options: MemcacheOptions
    optimistic = True
    evicts = True

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self._servers = Servers(
            name,
            self.options.servers,
            connect_timeout=self.options.connect_timeout,
            timeout=self.options.timeout,
        )
        self.address = self._servers.address

    def get(self, key: str) -> tuple[bytes | None, Any]:
        raw, token = self._servers.run(key, "gets", key)
        return raw, token

    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        if version is not None:
            self._cas(key, raw, version, expiry(ttl))
            return
        # A tombstone's client flags hold its end, for touch.
        flags = int(time.time()) + ttl + 1 if raw == TOMBSTONE else 0
        if not self._servers.run(
            key, "set", key, raw, expire=expiry(ttl), flags=flags, noreply=False
        ):
            raise self._servers.unavailable(key, "the server did not store the session")

    def remove(self, key: str, version: Any) -> None:
        if version is None:
            self._servers.run(key, "delete", key, noreply=False)
        else:  # an already-expired item, stored only while nobody wrote
            self._cas(key, b"{}", version, -1)

    def _cas(self, key: str, raw: bytes, version: Any, expire: int) -> None:
        # False: written meanwhile; None: deleted or expired since.
        if not self._servers.run(key, "cas", key, raw, version, expire=expire, noreply=False):
            raise LostRace

    def place_new(self, record: Record, ttl: int) -> tuple[str, str]:
        failures: dict[str, BackendUnavailable] = {}
        recent = self._servers.failed_within(DOWN_PAUSE)
        if recent >= set(self._servers.pools):
            recent = set()  # all failed lately: try them again rather than give up
        # Each draw lands on a server at random: with one server of N down,
        # a handful of draws all but surely finds a live one.
        for _ in range(MAX_DRAWS):
            session_id = new_session_id()
            key = self.storage_key(session_id)
            server = self._servers.server(key)
            if server in failures or server in recent:
                continue
            try:
                self.put(key, record, ttl)
            except BackendUnavailable as error:
                if not unreachable(error):
                    raise  # the server answered: refused the value, say
                failures[server] = error
                if len(failures) == len(self._servers.pools):
                    break
                continue
            return session_id, key
        if failures:
            raise next(iter(failures.values()))
        raise self._servers.unavailable(key, "no server to place a new session on")

    def touch(self, key: str, ttl: int) -> bool:
        # One meta-get extends the expiry and returns the flags that tell a tombstone.
        reply = self._servers.run(key, "raw_command", f"mg {key} T{expiry(ttl)} f", b"\r\n")
        if reply.startswith(b"EN"):  # no such item
            return False
        flags = [token for token in reply.split() if token.startswith(b"f")]
        if len(flags) != 1 or not flags[0][1:].isdigit():
            raise self._servers.unavailable(key, f"unexpected reply to mg: {reply[:40]!r}")
        if tombstone_end := int(flags[0][1:]):
            # Made a tombstone by a concurrent request: give its grace back.
            self._servers.run(key, "touch", key, tombstone_end, noreply=False)
            return False
        return True
