"""How the memcache backend reaches memcached: a connection pool per server.

Several servers share the sessions by HashClient's rendezvous hashing, but
its failover is bypassed: while a server fails, HashClient answers "not
found" instead of raising, then moves that server's keys elsewhere and back
once it returns, where a session logged out meanwhile would live again. So
each key stays on its own server, and while that one is down its sessions
raise :class:`~tipsessions.BackendUnavailable` and the others carry on.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from pymemcache.client.base import PooledClient, normalize_server_spec
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError

from ..errors import BackendUnavailable

#: Longest expiry memcached reads as relative seconds rather than a unix time.
RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600
#: How a pooled connection to a server process that has since died fails, at
#: once; its writes died with that process, so trying again applies none twice.
_DEAD_CONNECTION = (MemcacheUnexpectedCloseError, ConnectionResetError, BrokenPipeError)


class Servers:
    """The servers of one backend, a pool of connections each, and when each last failed."""

    def __init__(self, backend: str, servers: list[str], **client_options: Any) -> None:
        self.backend = backend
        self.address = ",".join(servers)
        specs = [normalize_server_spec(server) for server in servers]
        # Every write waits for the answer: fire-and-forget reports success
        # even when memcached refused the value (one over the item size limit).
        client_options["default_noreply"] = False
        if len(specs) == 1:
            self._ring = None
            self.pools = {servers[0]: PooledClient(specs[0], **client_options)}
        else:
            cluster = HashClient(specs, use_pooling=True, **client_options)
            self._ring, self.pools = cluster.hasher, cluster.clients
        self._failed_at: dict[str, float] = {}
        # Applications have no shutdown hook: close the pooled sockets when
        # the backend goes away instead of leaving them to the collector.
        weakref.finalize(self, _close_all, list(self.pools.values()))

    def run(self, key: str, command: str, *args: Any, **kwargs: Any) -> Any:
        """``command`` of the pool of ``key``'s server, errors translated."""
        server = self.server(key)
        pool = self.pools[server]
        # After a restart every idle connection is dead: go through them to a
        # new one rather than fail a request per connection.
        for tries_left in range(len(pool.client_pool.free), -1, -1):
            try:
                return getattr(pool, command)(*args, **kwargs)
            except (*_DEAD_CONNECTION, OSError) as error:
                if tries_left and isinstance(error, _DEAD_CONNECTION):
                    continue
                self._failed_at[server] = time.monotonic()
                raise self.unavailable(key, _describe(error)) from error
            except MemcacheError as error:
                raise self.unavailable(key, _describe(error)) from error

    def server(self, key: str) -> str:
        return next(iter(self.pools)) if self._ring is None else str(self._ring.get_node(key))

    def unavailable(self, key: str, reason: str) -> BackendUnavailable:
        return BackendUnavailable(self.backend, self.address, f"{self.server(key)}: {reason}")

    def failed_within(self, seconds: float) -> set[str]:
        """The servers that failed to answer in the last ``seconds``."""
        now = time.monotonic()
        return {server for server, at in list(self._failed_at.items()) if now - at < seconds}


def unreachable(error: BackendUnavailable) -> bool:
    """Whether ``error`` is a server that did not answer, rather than one that refused."""
    return isinstance(error.__cause__, (OSError, *_DEAD_CONNECTION))


def expiry(ttl: int) -> int:
    """``ttl`` as memcached reads it, so that the item lives at least ``ttl`` seconds.

    Its clock ticks in whole seconds: an item set for N seconds just before a
    tick goes after N - 1, hence one more. Beyond 30 days only a unix time works.
    """
    seconds = ttl + 1
    return seconds if seconds <= RELATIVE_EXPIRY_LIMIT else int(time.time()) + seconds


def _close_all(pools: list[Any]) -> None:
    for pool in pools:
        pool.close()


def _describe(error: BaseException) -> str:
    if error.args and isinstance(error.args[0], bytes):
        # memcached's own words, such as "object too large for cache".
        return error.args[0].decode("ascii", "replace")
    return str(error) or type(error).__name__
