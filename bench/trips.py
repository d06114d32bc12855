"""Round trips per request to each server backend, counted at the server.

A page is seeded, the server's counters are read, the page is requested
``n`` times, and the counters are read again. What reading the counters
costs by itself is measured the same way with no request in between and
taken off.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

from .measure import Worker
from .servers import Addresses, memcached_counters, redis_counters

KINDS = ("untouched", "read", "write")

# variant key -> the server it talks to
SERVER_VARIANTS = {
    "ts:memcache": "memcached",
    "ts:redis": "redis",
    "ts:datastore": "datastore",
    # Bound to a user, with the registry on Redis: what the registry adds.
    "ts:securecookie+user": "redis",
    "ts:redis+user": "redis",
    "peer:beaker-redis": "redis",
    "peer:flask-session-redis": "redis",
}


@dataclass(frozen=True)
class Trips:
    """Round trips per request of one page, and which commands they carried."""

    round_trips: float
    commands: dict[str, float]


Snapshot = tuple[int, collections.Counter[str]]


def _snapshot(server: str, addresses: Addresses) -> Callable[[], Snapshot]:
    if server == "memcached":

        def memcached() -> Snapshot:
            counts = memcached_counters(addresses.memcached)
            return sum(counts.values()), counts

        return memcached
    return lambda: redis_counters(addresses.redis_url)


def _delta(before: Snapshot, after: Snapshot) -> Snapshot:
    commands = collections.Counter(after[1])
    commands.subtract(before[1])
    return after[0] - before[0], +commands


def count(worker: Worker, addresses: Addresses, n: int = 20) -> dict[str, dict[str, Trips]]:
    """Round trips per request for every server variant and page (small payload)."""
    results: dict[str, dict[str, Trips]] = {}
    for variant, server in SERVER_VARIANTS.items():
        results[variant] = {}
        for kind in KINDS:
            cell = f"{variant}|{kind}|small"
            worker.call(op="run", cell=cell, n=0)  # seeds; the seed's own trips are not counted
            if server == "datastore":
                counts = collections.Counter(
                    worker.call(op="datastore_rpcs", cell=cell, n=n)["counts"]
                )
                results[variant][kind] = Trips(
                    sum(counts.values()) / n, {k: v / n for k, v in counts.items()}
                )
                continue
            snapshot = _snapshot(server, addresses)
            idle = _delta(snapshot(), snapshot())
            before = snapshot()
            worker.call(op="run", cell=cell, n=n, prepare=False)
            trips, commands = _delta(before, snapshot())
            commands.subtract(idle[1])
            results[variant][kind] = Trips(
                (trips - idle[0]) / n, {k: v / n for k, v in (+commands).items()}
            )
    return results
