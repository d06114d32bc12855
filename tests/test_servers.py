"""Tests of the test infrastructure: the real servers answer, die when killed, and come back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from google.cloud import datastore
from pymemcache.client.base import Client as MemcacheClient
from pymemcache.exceptions import MemcacheUnexpectedCloseError
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests import servers
from tests.servers import DATASTORE_TEST_PROJECT, ServerProcess, ServerStartError

REPO_ROOT = Path(__file__).resolve().parent.parent


def memcache_client(address: str) -> MemcacheClient:
    host, port = address.rsplit(":", 1)
    return MemcacheClient((host, int(port)), connect_timeout=1, timeout=1)


def redis_client(url: str) -> redis.Redis:
    # No retries: redis-py retries a refused connection with back-off by
    # default, which would only slow down the "server is down" checks.
    return redis.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def assert_refuses_connections(server: ServerProcess) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1).close()


def test_free_port_can_be_bound_and_avoids_the_default_ports() -> None:
    port = servers.free_port()
    assert port not in (6379, 8081, 11211)
    with socket.socket() as sock:
        sock.bind((servers.LOOPBACK, port))


def test_two_distinct_memcached_servers_answer(
    memcached_servers: list[str], unique_prefix: str
) -> None:
    assert len(set(memcached_servers)) == 2
    for address in memcached_servers:
        client = memcache_client(address)
        client.set(f"{unique_prefix}key", address.encode())
        assert client.get(f"{unique_prefix}key") == address.encode()
        client.close()


def test_redis_answers(redis_url: str, unique_prefix: str) -> None:
    client = redis_client(redis_url)
    client.set(f"{unique_prefix}key", b"value", ex=60)
    assert client.get(f"{unique_prefix}key") == b"value"
    client.close()


def test_datastore_emulator_answers(datastore_emulator: str, unique_namespace: str) -> None:
    assert os.environ["DATASTORE_EMULATOR_HOST"] == datastore_emulator
    assert os.environ["DATASTORE_PROJECT_ID"] == DATASTORE_TEST_PROJECT
    assert os.environ["GOOGLE_CLOUD_PROJECT"] == DATASTORE_TEST_PROJECT
    client = datastore.Client(namespace=unique_namespace)
    entity = datastore.Entity(client.key("Session", "sid-1"))
    entity["data"] = b"payload"
    client.put(entity)
    fetched = client.get(client.key("Session", "sid-1"))
    assert fetched is not None and fetched["data"] == b"payload"


def test_killed_memcached_refuses_then_restarts_on_the_same_port(
    killable_memcached: ServerProcess, unique_prefix: str
) -> None:
    client = memcache_client(killable_memcached.address)
    client.set(f"{unique_prefix}key", b"value")
    address = killable_memcached.address

    killable_memcached.kill()
    assert_refuses_connections(killable_memcached)
    # The client's open connection is closed (a FIN or a reset, depending on
    # timing); a reconnect would be refused.
    with pytest.raises((ConnectionError, MemcacheUnexpectedCloseError)):
        client.get(f"{unique_prefix}key")

    killable_memcached.start()
    assert killable_memcached.address == address
    assert client.get(f"{unique_prefix}key") is None, "a restarted memcached starts empty"
    client.set(f"{unique_prefix}key", b"again")
    assert client.get(f"{unique_prefix}key") == b"again"
    client.close()


def test_killed_redis_refuses_then_restarts_on_the_same_port(
    killable_redis: ServerProcess, unique_prefix: str
) -> None:
    client = redis_client(servers.redis_url(killable_redis.address))
    client.set(f"{unique_prefix}key", b"value")

    killable_redis.kill()
    assert_refuses_connections(killable_redis)
    with pytest.raises(redis.exceptions.ConnectionError):
        client.get(f"{unique_prefix}key")

    killable_redis.start()
    assert client.get(f"{unique_prefix}key") is None, "a restarted in-memory redis starts empty"
    client.set(f"{unique_prefix}key", b"again")
    assert client.get(f"{unique_prefix}key") == b"again"
    client.close()


def test_stopped_datastore_emulator_refuses_then_restarts_on_the_same_port(
    killable_datastore: ServerProcess, unique_namespace: str
) -> None:
    assert os.environ["DATASTORE_EMULATOR_HOST"] == killable_datastore.address
    key_path = ("Session", "sid-1")
    client = datastore.Client(namespace=unique_namespace)
    entity = datastore.Entity(client.key(*key_path))
    entity["data"] = b"payload"
    client.put(entity)

    # A graceful stop must take down the Java process too, not just gcloud's
    # wrapper: if Java survived, the port would still accept connections.
    killable_datastore.stop()
    assert_refuses_connections(killable_datastore)
    assert not servers.datastore_emulator_is_ready(killable_datastore.host, killable_datastore.port)

    killable_datastore.start()
    client = datastore.Client(namespace=unique_namespace)
    assert client.get(client.key(*key_path)) is None, (
        "--no-store-on-disk: a restarted emulator starts empty"
    )
    client.put(entity)
    assert client.get(client.key(*key_path)) is not None


def test_paused_server_accepts_but_does_not_answer_until_resumed(
    killable_redis: ServerProcess,
) -> None:
    client = redis_client(servers.redis_url(killable_redis.address))
    killable_redis.pause()
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
    finally:
        killable_redis.resume()
    assert client.ping()
    client.close()


def test_stop_ends_a_paused_server_without_waiting_for_sigkill(
    killable_memcached: ServerProcess,
) -> None:
    killable_memcached.pause()
    began = time.monotonic()
    killable_memcached.stop()
    assert time.monotonic() - began < killable_memcached.stop_grace
    assert_refuses_connections(killable_memcached)


def test_server_refuses_to_start_on_a_port_in_use(
    killable_redis: ServerProcess, tmp_path: Path
) -> None:
    same_port = servers.redis_server(tmp_path, port=killable_redis.port)
    with pytest.raises(servers.PortInUseError, match=killable_redis.address):
        same_port.start()
    assert not same_port.is_running


def test_server_that_dies_during_startup_reports_its_log(tmp_path: Path) -> None:
    dies = ServerProcess(
        "dies",
        [sys.executable, "-c", "import sys; print('cannot bind'); sys.exit(3)"],
        servers.memcached_is_ready,
        servers.free_port(),
        tmp_path / "dies.log",
    )
    with pytest.raises(
        servers.ServerExitedDuringStartup, match=r"(?s)exited with status 3.*cannot bind"
    ):
        dies.start()
    assert not dies.is_running


def test_server_that_never_gets_ready_is_killed_and_reported(tmp_path: Path) -> None:
    never_ready = ServerProcess(
        "never-ready",
        [sys.executable, "-u", "-c", "import time; print('still booting'); time.sleep(60)"],
        servers.memcached_is_ready,
        servers.free_port(),
        tmp_path / "never-ready.log",
        startup_timeout=0.5,
    )
    with pytest.raises(ServerStartError, match=r"(?s)not ready after.*still booting"):
        never_ready.start()
    assert not never_ready.is_running


def test_environment_overrides_replace_the_started_servers(
    memcached_servers: list[str], redis_url: str, datastore_emulator: str, tmp_path: Path
) -> None:
    """An inner pytest run pointed at the servers of this run must use them and start none."""
    inner_test = tmp_path / "test_inner.py"
    inner_test.write_text(
        textwrap.dedent(
            """
            import os

            def test_overrides(memcached_servers, redis_url, datastore_emulator, server_log_dir):
                assert memcached_servers == os.environ["TIPSESS_TEST_MEMCACHED"].split(",")
                assert redis_url == os.environ["TIPSESS_TEST_REDIS_URL"]
                assert datastore_emulator == os.environ["TIPSESS_TEST_DATASTORE_HOST"]
                assert os.environ["DATASTORE_EMULATOR_HOST"] == datastore_emulator
                assert list(server_log_dir.iterdir()) == [], "no server may have been started"
            """
        )
    )
    env = {
        **os.environ,
        "TIPSESS_TEST_MEMCACHED": ",".join(memcached_servers),
        "TIPSESS_TEST_REDIS_URL": redis_url,
        "TIPSESS_TEST_DATASTORE_HOST": datastore_emulator,
    }
    # Run from the checkout so that `tests.server_fixtures` is importable.
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--noconftest",
            "-p",
            "tests.server_fixtures",
            "--rootdir",
            str(tmp_path),
            str(inner_test),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inner.returncode == 0, inner.stdout + inner.stderr
