"""pytest fixtures that give tests real memcached, redis and Datastore emulator servers.

Shared servers are session-scoped and started lazily, the first time a test
asks for one, on free loopback ports. Each can be replaced by a server that is
already running by setting an environment variable:

* ``TIPSESS_TEST_MEMCACHED="host:port,host:port"``
* ``TIPSESS_TEST_REDIS_URL="redis://host:port/0"``
* ``TIPSESS_TEST_DATASTORE_HOST="host:port"``

Tests share those servers, so they isolate their data by key prefix or
Datastore namespace (``unique_prefix``) and never flush a whole server.

Tests that kill a server use the function-scoped ``killable_*`` fixtures,
which start a private instance so the shared one keeps running.

A Redis Cluster (three masters) and a Sentinel group (a master, a replica
and three sentinels) are started once per run too, the first time a test
asks for them. Figures that tests record with the ``figures`` fixture are
printed at the end of the run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.servers import (
    DATASTORE_TEST_PROJECT,
    RedisCluster,
    SentinelGroup,
    ServerProcess,
    start_on_free_port,
)

MEMCACHED_OVERRIDE = "TIPSESS_TEST_MEMCACHED"
REDIS_OVERRIDE = "TIPSESS_TEST_REDIS_URL"
DATASTORE_OVERRIDE = "TIPSESS_TEST_DATASTORE_HOST"


def _datastore_environment(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """Point google-cloud-datastore clients created from now on at the emulator ``host``.

    The client reads DATASTORE_EMULATOR_HOST (and then uses anonymous
    credentials) and takes its project from DATASTORE_DATASET or
    GOOGLE_CLOUD_PROJECT; DATASTORE_PROJECT_ID is what ``gcloud beta
    emulators datastore env-init`` sets, for code that reads that one.
    """
    monkeypatch.setenv("DATASTORE_EMULATOR_HOST", host)
    for name in ("DATASTORE_PROJECT_ID", "DATASTORE_DATASET", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.setenv(name, DATASTORE_TEST_PROJECT)


def _warm_up_datastore() -> None:
    """Let a fresh emulator's JVM warm up: its first requests can take seconds.

    Tests with short timeouts would otherwise fail on a slow first answer
    instead of on what they test. Uses the environment set just before.
    """
    from google.cloud import datastore

    client = datastore.Client(namespace="warm-up")
    key = client.key("WarmUp", "warm-up")
    client.put(datastore.Entity(key), timeout=30)
    transaction = client.transaction(begin_later=True)
    client.get(key, transaction=transaction, timeout=30)
    transaction.put(datastore.Entity(key))
    transaction.commit(timeout=30)
    client.delete(key, timeout=30)


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the servers started by this run write their output (kept by pytest for inspection)."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def memcached_servers(server_log_dir: Path) -> Iterator[list[str]]:
    """Addresses ("127.0.0.1:PORT") of two memcached servers, for multi-server key distribution."""
    override = os.environ.get(MEMCACHED_OVERRIDE, "").strip()
    if override:
        yield [address.strip() for address in override.split(",") if address.strip()]
        return
    with ExitStack() as stack:
        instances = [
            stack.enter_context(start_on_free_port(servers.memcached_server, server_log_dir))
            for _ in range(2)
        ]
        yield [server.address for server in instances]


@pytest.fixture(scope="session")
def redis_url(server_log_dir: Path) -> Iterator[str]:
    """URL ("redis://127.0.0.1:PORT/0") of a shared redis server."""
    override = os.environ.get(REDIS_OVERRIDE, "").strip()
    if override:
        yield override
        return
    with start_on_free_port(servers.redis_server, server_log_dir) as server:
        yield servers.redis_url(server.address)


@pytest.fixture(scope="session")
def datastore_emulator(server_log_dir: Path) -> Iterator[str]:
    """Address ("127.0.0.1:PORT") of the shared Datastore emulator.

    For the rest of the session, DATASTORE_EMULATOR_HOST and the project
    variables point at it (restored at the end), so a plain
    ``google.cloud.datastore.Client()`` talks to the emulator.
    """
    with ExitStack() as stack:
        host = os.environ.get(DATASTORE_OVERRIDE, "").strip()
        if not host:
            emulator = start_on_free_port(servers.datastore_emulator, server_log_dir)
            host = stack.enter_context(emulator).address
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        _datastore_environment(monkeypatch, host)
        _warm_up_datastore()
        yield host


@pytest.fixture(scope="session")
def redis_cluster(server_log_dir: Path) -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters sharing the 16384 slots; ``.nodes`` are (host, port)."""
    with servers.start_redis_cluster(server_log_dir) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinels(server_log_dir: Path) -> Iterator[SentinelGroup]:
    """A master, its replica and three sentinels; ``.sentinel_nodes``, ``.service_name``.

    A test may fail the master over (``.failover()``): the group stays usable.
    """
    with servers.start_sentinel_group(server_log_dir) as group:
        yield group


FIGURES = pytest.StashKey[dict[str, Any]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Measured figures by name, printed in the run's summary."""
    return request.config.stash.setdefault(FIGURES, {})


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    measured = config.stash.get(FIGURES, {})
    if measured:
        terminalreporter.section("measured figures")
        for name, value in measured.items():
            terminalreporter.write_line(f"{name}: {value}")


@contextmanager
def _private_server(
    make_server: Callable[[Path, int | None], ServerProcess], log_dir: Path
) -> Iterator[ServerProcess]:
    """Start a server for one test and kill it afterwards.

    Killed rather than stopped gracefully: its in-memory data is thrown away
    anyway, and memcached takes up to a second (its clock tick) to honour SIGTERM.
    """
    server = start_on_free_port(make_server, log_dir)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def killable_memcached(server_log_dir: Path) -> Iterator[ServerProcess]:
    """A private memcached for this test only.

    A ``ServerProcess``: ``.address``, ``.kill()``/``.stop()``, ``.start()``,
    ``.pause()``/``.resume()``.
    """
    with _private_server(servers.memcached_server, server_log_dir) as server:
        yield server


@pytest.fixture
def killable_redis(server_log_dir: Path) -> Iterator[ServerProcess]:
    """A private redis for this test only; its URL is ``servers.redis_url(server.address)``."""
    with _private_server(servers.redis_server, server_log_dir) as server:
        yield server


@pytest.fixture
def killable_datastore(
    server_log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerProcess]:
    """A private Datastore emulator for this test only (takes about 2-3 s to start).

    While the test runs, DATASTORE_EMULATOR_HOST points at this emulator, even
    if the test also uses the shared ``datastore_emulator``: function fixtures
    are set up after session ones, so this setting wins. Clients must be
    created after the fixture, as the client reads the variable when built.
    """
    with _private_server(servers.datastore_emulator, server_log_dir) as server:
        _datastore_environment(monkeypatch, server.address)
        _warm_up_datastore()
        yield server


@pytest.fixture
def unique_prefix() -> str:
    """A fresh key prefix such as "t-1f2e3d4c5b6a:" so tests never see each other's data."""
    return f"t-{secrets.token_hex(6)}:"


@pytest.fixture
def unique_namespace() -> str:
    """A fresh Datastore namespace such as "t-1f2e3d4c5b6a".

    Datastore namespaces must match ``[0-9A-Za-z._-]{0,100}``, so the colon
    of ``unique_prefix`` is not allowed there.
    """
    return f"t-{secrets.token_hex(6)}"
