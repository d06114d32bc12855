"""The real servers the bench talks to, and the counters they keep.

memcached, redis-server and the Datastore emulator are started on free
loopback ports by the test suite's own ``tests.servers`` and stopped by
pid. Round trips are counted at the server: memcached's ``stats`` command
counters and redis's ``total_reads_processed`` (one per batch of commands
read from a client, which is one round trip) with ``commandstats`` for the
breakdown.
"""

from __future__ import annotations

import collections
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests import servers
from tests.servers import DATASTORE_TEST_PROJECT, start_on_free_port

# memcached's per-command counters; a multi-key get counts once per key.
_MEMCACHED_COMMANDS = {
    "cmd_get": "get",
    "cmd_set": "set",
    "cmd_touch": "touch",
    "delete_hits": "delete",
    "delete_misses": "delete",
    "incr_hits": "incr",
    "incr_misses": "incr",
    "decr_hits": "decr",
    "decr_misses": "decr",
}


@dataclass(frozen=True)
class Addresses:
    memcached: str
    redis_url: str
    datastore: str


@contextmanager
def running(log_dir: Path) -> Iterator[Addresses]:
    """Start the three servers, point Datastore clients at the emulator, stop them at the end."""
    with ExitStack() as stack:
        memcached = stack.enter_context(start_on_free_port(servers.memcached_server, log_dir))
        redis = stack.enter_context(start_on_free_port(servers.redis_server, log_dir))
        emulator = stack.enter_context(start_on_free_port(servers.datastore_emulator, log_dir))
        # Read by every Datastore client built from now on, here and in the workers.
        os.environ["DATASTORE_EMULATOR_HOST"] = emulator.address
        for name in ("DATASTORE_PROJECT_ID", "DATASTORE_DATASET", "GOOGLE_CLOUD_PROJECT"):
            os.environ[name] = DATASTORE_TEST_PROJECT
        _warm_up_datastore()
        yield Addresses(memcached.address, servers.redis_url(redis.address), emulator.address)


def _warm_up_datastore() -> None:
    """A fresh emulator's JVM answers its first requests in seconds; take that hit here."""
    from google.cloud import datastore

    client = datastore.Client(namespace="bench-warm-up")
    key = client.key("WarmUp", "warm-up")
    for _ in range(20):
        client.put(datastore.Entity(key), timeout=30)
        client.get(key, timeout=30)
    client.delete(key, timeout=30)


def memcached_counters(address: str) -> collections.Counter[str]:
    """The storage commands memcached has served so far, by command."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    counts: collections.Counter[str] = collections.Counter()
    for line in reply.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in _MEMCACHED_COMMANDS:
            counts[_MEMCACHED_COMMANDS[parts[1]]] += int(parts[2])
    return counts


def redis_counters(url: str) -> tuple[int, collections.Counter[str]]:
    """(read events so far, commands so far by name) of a redis server.

    Commands a Lua script runs are counted in ``commandstats`` too, so the
    breakdown may exceed the round trips.
    """
    import redis

    client = redis.Redis.from_url(url)
    try:
        reads = int(client.info("stats")["total_reads_processed"])
        commands: collections.Counter[str] = collections.Counter()
        for name, fields in client.info("commandstats").items():
            command = name.removeprefix("cmdstat_")
            if command not in ("info", "hello", "client|setinfo"):
                commands[command] = int(fields["calls"])
    finally:
        client.close()
    return reads, commands
