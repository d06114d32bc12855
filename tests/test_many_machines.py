"""Sessions shared by two app server processes, on every backend built for that.

Two waitress processes serve one app; every client alternates between them
on each request, as behind a load balancer. Redis runs as a single server,
as a three-master Redis Cluster and as a Sentinel group; memcached as a pool
of three. What must hold, and is printed at the end of the run:

* continuity: a session written by one process reads the same in the other,
  on every request (100 %);
* 8 threads writing at once over both processes lose no write;
* no request fails with a server error.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.apps import SECRET
from tests.multiprocess import AppPair, app_pair, measure_continuity, measure_lost_writes
from tests.servers import RedisCluster, SentinelGroup, ServerProcess, start_on_free_port

SHARED_BACKENDS = [
    "securecookie",
    "encryptedcookie",
    "file",
    "memcache",
    "redis",
    "redis_cluster",
    "redis_sentinel",
    "datastore",
]
COOKIE_BACKENDS = {"securecookie", "encryptedcookie"}


def redis_options(url: str, prefix: str, **topology: Any) -> dict[str, Any]:
    """Every option, as a backend added under ``backends`` gets no defaults."""
    options = {
        "url": url,
        "prefix": prefix,
        "connect_timeout": 1.0,
        "socket_timeout": 1.0,
        "cluster": False,
        "startup_nodes": [],
        "sentinels": None,
        "service_name": None,
    }
    return {**options, **topology}


@pytest.fixture(scope="module")
def memcached_pool(server_log_dir: Path) -> Iterator[list[ServerProcess]]:
    """Three memcached of this module's own: one is killed and brought back."""
    with ExitStack() as stack:
        pool = []
        for _ in range(3):
            node = start_on_free_port(servers.memcached_server, server_log_dir)
            stack.callback(node.kill)
            pool.append(node)
        yield pool


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory,
    memcached_pool: list[ServerProcess],
    redis_url: str,
    redis_cluster: RedisCluster,
    redis_sentinels: SentinelGroup,
    datastore_emulator: str,
) -> dict[str, Any]:
    """One configuration with every backend, each under its own path and cookie."""
    prefix = f"t-{secrets.token_hex(6)}:"
    (first, *others) = redis_cluster.nodes
    return {
        "secret_key": SECRET,
        "file": {"path": str(tmp_path_factory.mktemp("shared-sessions"))},
        "memcache": {"servers": [node.address for node in memcached_pool], "prefix": prefix},
        "redis": {"url": redis_url, "prefix": prefix},
        "datastore": {"namespace": prefix.rstrip(":")},
        "backends": {
            "redis_cluster": "tipsessions.backends.redis:RedisBackend",
            "redis_sentinel": "tipsessions.backends.redis:RedisBackend",
        },
        "redis_cluster": redis_options(
            f"redis://{first[0]}:{first[1]}/0", prefix, cluster=True, startup_nodes=others
        ),
        "redis_sentinel": redis_options(
            "redis://127.0.0.1/0",
            prefix,
            sentinels=redis_sentinels.sentinel_nodes,
            service_name=redis_sentinels.service_name,
        ),
    }


@pytest.fixture(scope="module")
def pair(server_log_dir: Path, settings: dict[str, Any]) -> Iterator[AppPair]:
    with app_pair(server_log_dir, settings) as running:
        yield running


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
def test_sessions_carry_on_across_processes(
    pair: AppPair, backend: str, figures: dict[str, Any]
) -> None:
    continuity = measure_continuity(pair, backend)
    writes = measure_lost_writes(pair, backend, shared=backend not in COOKIE_BACKENDS)
    figures[f"{backend}: two processes"] = (
        f"continuity {continuity.continuity:.0f} % of {continuity.requests} requests, "
        f"lost {writes.lost} of {writes.writes} writes from 8 threads, "
        f"5xx {continuity.server_errors + writes.server_errors}"
    )
    assert continuity.continuity == 100.0
    assert writes.lost == 0
    assert continuity.server_errors == writes.server_errors == 0
