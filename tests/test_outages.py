"""Every server-side backend facing a server that is down, dies, hangs, restarts or flaps.

Each backend runs on a private server of its own (memcached, redis, the
Datastore emulator) or a private folder (file), with 0.3 s timeouts, and
every case is measured against the same pass criteria:

* a request that needs the server fails with a typed error
  (:class:`~tipsessions.BackendUnavailable` naming the backend and address,
  or :class:`~tipsessions.SessionConflict`) within the timeout plus 100 ms,
  or within 1.5 times the timeout when the server hangs;
* under ``on_backend_error = "degrade"`` the request is served (never a
  500), ``session.degraded`` tells the handler, and no cookie is set or
  deleted;
* no record or file is left that no cookie points to;
* the first request after the server is back succeeds;
* file descriptors are back to where they were.

Flaps are network drops in front of the server (a relay that resets every
connection and refuses new ones, then accepts again): a restart of the
Datastore emulator takes seconds, a flap milliseconds. The figures are
printed in a table at the end of the run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import servers
from tests.apps import Browser, backend_of, stored_key
from tests.fault_figures import Figures, record
from tests.server_fixtures import _datastore_environment, _warm_up_datastore
from tests.servers import FlakyProxy, ServerProcess, redis_url, start_on_free_port
from tipsessions import BackendUnavailable, SessionConflict

TIMEOUT = 0.3
#: How much later than its timeout a typed error may arrive.
SLACK = 0.1
TYPED = (BackendUnavailable, SessionConflict)
#: Flaps per backend. The emulator's failing requests each wait out part of
#: the timeout, so it gets fewer; TIPSESS_DATASTORE_FLAPS=100 runs the full count.
FLAPS = {"memcache": 100, "redis": 100, "file": 100}
DATASTORE_FLAPS = int(os.environ.get("TIPSESS_DATASTORE_FLAPS", "20"))


def _remote_ports() -> dict[int, int]:
    """Socket inode -> remote port, for the TCP sockets of this machine."""
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                ports[int(fields[9])] = int(fields[2].rsplit(":", 1)[1], 16)
    return ports


def held_fds(target: Target) -> set[int]:
    """This process's descriptors that reach ``target``: sockets to it, files in it.

    Counted by where they lead, not in total, so that nothing else the
    process does meanwhile (a background thread, a collected object) counts.
    """
    ports, held = _remote_ports(), set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            if ports.get(int(link[8:-1])) in target.ports():
                held.add(int(fd))
        elif target.owns(link):
            held.add(int(fd))
    return held - target.own_fds()


class Target:
    """One backend and the thing behind it that can fail."""

    backend = ""
    address = ""
    #: Where the flapping requests go (the relay), when not ``address``.
    flap_address: str | None = None

    def settings(self, *, via_proxy: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    def flap_down(self) -> None:
        raise NotImplementedError

    def flap_up(self) -> None:
        raise NotImplementedError

    def stored(self, browser: Browser) -> set[str]:
        """Storage keys of every record present for this test."""
        raise NotImplementedError

    def own_fds(self) -> set[int]:
        """Descriptors this harness holds (the relay's sockets), left out of the count."""
        return set()

    def ports(self) -> set[int]:
        """Ports a connection to the server goes to."""
        return set()

    def owns(self, path: str) -> bool:
        """Whether an open file belongs to the backend's storage."""
        return False

    def settle(self) -> None:
        """Wait for what the backend closes a little later."""

    def browser(self, *, via_proxy: bool = False, **extra: Any) -> Browser:
        browser = Browser(**self.settings(via_proxy=via_proxy), **extra)
        backend_of(browser)  # built now, while its environment is in place
        return browser


class ServerTarget(Target):
    def __init__(self, backend: str, server: ServerProcess, prefix: str) -> None:
        self.backend, self.server, self.prefix = backend, server, prefix
        self.address = server.address
        self.proxy = FlakyProxy(server.address)
        self.flap_address = self.proxy.address

    def settings(self, *, via_proxy: bool = False) -> dict[str, Any]:
        address = self.proxy.address if via_proxy else self.server.address
        if self.backend == "memcache":
            options = {"servers": [address], "connect_timeout": TIMEOUT, "timeout": TIMEOUT}
        else:
            options = {
                "url": redis_url(address),
                "connect_timeout": TIMEOUT,
                "socket_timeout": TIMEOUT,
            }
        return {"default_backend": self.backend, self.backend: {**options, "prefix": self.prefix}}

    def stop(self) -> None:
        self.server.kill()

    def start(self) -> None:
        self.server.start()

    def pause(self) -> None:
        self.server.pause()

    def resume(self) -> None:
        self.server.resume()

    def flap_down(self) -> None:
        self.proxy.down()

    def flap_up(self) -> None:
        self.proxy.up()

    def own_fds(self) -> set[int]:
        return self.proxy.fds()

    def ports(self) -> set[int]:
        return {self.server.port, self.proxy.port}

    def stored(self, browser: Browser) -> set[str]:
        if self.backend == "redis":
            client = redis.Redis.from_url(redis_url(self.server.address))
            try:
                return {key.decode() for key in client.scan_iter(match=self.prefix + "*")}
            finally:
                client.close()
        host, port = self.server.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"lru_crawler metadump all\r\n")
            dump = b""
            while not dump.endswith(b"END\r\n"):
                dump += sock.recv(65536)
        keys = {
            urllib.parse.unquote(line.split()[0].removeprefix(b"key=").decode())
            for line in dump.splitlines()
            if line.startswith(b"key=")
        }
        return {key for key in keys if key.startswith(self.prefix)}

    def close(self) -> None:
        self.proxy.close()


class DatastoreTarget(ServerTarget):
    def __init__(self, server: ServerProcess, namespace: str, monkeypatch: Any) -> None:
        super().__init__("datastore", server, namespace)
        self.monkeypatch = monkeypatch

    def settings(self, *, via_proxy: bool = False) -> dict[str, Any]:
        # The client reads the emulator's address when the backend is built.
        _datastore_environment(
            self.monkeypatch, self.proxy.address if via_proxy else self.server.address
        )
        return {
            "default_backend": "datastore",
            "datastore": {"namespace": self.prefix, "timeout": TIMEOUT},
        }

    def start(self) -> None:
        self.server.start()
        _datastore_environment(self.monkeypatch, self.server.address)
        _warm_up_datastore()

    def settle(self) -> None:
        # A channel given up after a failed connect is closed once the calls
        # still on it have met their deadline.
        time.sleep(TIMEOUT + 0.3)

    def stored(self, browser: Browser) -> set[str]:
        client = backend_of(browser).client
        query = client.query(kind="Session")
        query.keys_only()
        return {entity.key.name for entity in query.fetch(timeout=30)}


HOLDER = """
import fcntl, os, signal, sys
folder = sys.argv[1]
held = []
for stripe in range(256):
    fd = os.open(os.path.join(folder, ".tip-lock-%02x" % stripe), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.append(fd)
print("held", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
"""


class FileTarget(Target):
    """A folder that can turn into a plain file, and a stopped process holding every lock."""

    backend = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = str(folder)
        self.aside = folder.with_name(folder.name + ".aside")
        self.holder: subprocess.Popen[str] | None = None

    def settings(self, *, via_proxy: bool = False) -> dict[str, Any]:
        return {
            "default_backend": "file",
            "file": {"path": str(self.folder), "lock_timeout": TIMEOUT},
        }

    def stop(self) -> None:
        if self.folder.is_dir():
            self.folder.rename(self.aside)
        self.folder.write_text("not a folder")

    def start(self) -> None:
        self.folder.unlink()
        if self.aside.is_dir():
            self.aside.rename(self.folder)

    flap_down, flap_up = stop, start

    def pause(self) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(self.folder)], stdout=subprocess.PIPE, text=True
        )
        assert self.holder.stdout is not None and self.holder.stdout.readline() == "held\n"

    def resume(self) -> None:
        assert self.holder is not None
        self.holder.kill()
        self.holder.wait()
        self.holder.stdout.close()  # type: ignore[union-attr]

    def owns(self, path: str) -> bool:
        return path.startswith((str(self.folder), str(self.aside)))

    def stored(self, browser: Browser) -> set[str]:
        names = {p.name[4:-5] for p in self.folder.glob("tip_*.sess")}
        return names | {p.name for p in (self.folder / ".tip-tmp").glob("*")}


@pytest.fixture(scope="module")
def private_servers(server_log_dir: Path) -> Iterator[dict[str, ServerProcess]]:
    """One private server per kind for this module; a test that stops one starts it again."""
    started: dict[str, ServerProcess] = {}
    yield started
    for server in started.values():
        server.kill()


def private_server(started: dict[str, ServerProcess], name: str, log_dir: Path) -> ServerProcess:
    make = {
        "memcache": servers.memcached_server,
        "redis": servers.redis_server,
        "datastore": servers.datastore_emulator,
    }[name]
    server = started.get(name)
    if server is None:
        server = started[name] = start_on_free_port(make, log_dir)
    elif not server.is_running:
        server.start()
    return server


@pytest.fixture(params=["memcache", "redis", "datastore", "file"])
def target(
    request: pytest.FixtureRequest,
    private_servers: dict[str, ServerProcess],
    server_log_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Target]:
    name = request.param
    if name == "file":
        file_target = FileTarget(tmp_path / "sessions")
        yield file_target
        if file_target.holder is not None and file_target.holder.poll() is None:
            file_target.resume()
        return
    server = private_server(private_servers, name, server_log_dir)
    prefix = request.getfixturevalue("unique_namespace" if name == "datastore" else "unique_prefix")
    if name == "datastore":
        _datastore_environment(monkeypatch, server.address)
        _warm_up_datastore()
        target: ServerTarget = DatastoreTarget(server, prefix, monkeypatch)
    else:
        target = ServerTarget(name, server, prefix)
    try:
        yield target
    finally:
        target.close()
        if server.is_running:
            server.resume()
        else:
            server.start()


def typed_failure(
    browser: Browser,
    target: Target,
    figures: Figures,
    script: Callable[[Any], Any],
    limit: float,
    address: str | None = None,
) -> None:
    """Run ``script`` in a request that must fail with a typed error within ``limit`` seconds."""
    started = time.monotonic()
    error = browser.fail(script)
    figures.cases += 1
    figures.failed_in(time.monotonic() - started)
    figures.limit = limit
    if not isinstance(error, TYPED):
        figures.untyped += 1
        raise AssertionError(f"untyped error: {error!r}")
    if isinstance(error, BackendUnavailable):
        assert (error.backend, error.address) == (target.backend, address or target.address)


def degraded_request(browser: Browser, figures: Figures, script: Callable[[Any], Any]) -> Any:
    """Run ``script`` under "degrade": served, and no cookie set or deleted."""
    figures.cases += 1
    try:
        result = browser(script)
    except Exception:
        figures.errors_500 += 1
        raise
    figures.cookies += len(browser.set_cookies())
    return result


def first_after_recovery(browser: Browser, figures: Figures, script: Callable[[Any], Any]) -> Any:
    figures.cases += 1
    try:
        return browser(script)
    except Exception:
        figures.recovery_failures += 1
        raise


def count_orphans(target: Target, figures: Figures, *browsers: Browser) -> None:
    live = {stored_key(b) for b in browsers if b.cookie() is not None}
    figures.orphans = len(target.stored(browsers[0]) - live)


def count_fds(target: Target, figures: Figures, baseline: set[int]) -> None:
    target.settle()
    figures.fd_delta = len(held_fds(target)) - len(baseline)


def store(key: str, value: Any) -> Callable[[Any], None]:
    return lambda h: h.session.__setitem__(key, value)


def peek(h: Any) -> tuple[bool, bool, dict[str, Any]]:
    return h.session.degraded, h.session.new, dict(h.session)


def check(figures: Figures) -> None:
    assert figures.worst <= figures.limit, f"slowest failure {figures.worst:.3f} s"
    assert (figures.errors_500, figures.untyped, figures.cookies) == (0, 0, 0)
    assert (figures.orphans, figures.recovery_failures) == (0, 0)
    assert figures.fd_delta <= 0, f"{figures.fd_delta} descriptors more than before"


def test_server_down_at_start(target: Target) -> None:
    figures = record(Figures(target.backend, "down at start"))
    raising, degrading = target.browser(), target.browser(on_backend_error="degrade")
    baseline = held_fds(target)
    target.stop()
    try:
        assert raising(lambda h: "no session needed") == "no session needed"
        for n in range(3):
            typed_failure(raising, target, figures, store("n", n), TIMEOUT + SLACK)
            # No cookie yet, so nothing to load: the save is what fails, and is dropped.
            assert degraded_request(degrading, figures, peek) == (False, True, {})
            degraded_request(degrading, figures, store("n", n))
        count_fds(target, figures, baseline)
    finally:
        target.start()
    first_after_recovery(raising, figures, store("n", 1))
    first_after_recovery(degrading, figures, store("n", 1))
    assert raising(peek) == degrading(peek) == (False, False, {"n": 1})
    count_orphans(target, figures, raising, degrading)
    check(figures)


@pytest.mark.parametrize("target", ["memcache", "redis", "datastore"], indirect=True)
def test_server_killed_between_load_and_save(target: Target) -> None:
    figures = record(Figures(target.backend, "killed between load and save"))
    raising, degrading = target.browser(), target.browser(on_backend_error="degrade")
    raising(store("n", 1))
    degrading(store("n", 1))
    baseline = held_fds(target)
    killed_at: list[float] = []

    def kill_then_write(h: Any) -> None:
        assert h.session["n"] == 1  # loaded while the server was alive
        target.stop()
        killed_at.append(time.monotonic())
        h.session["n"] = 2

    for browser in (raising, degrading):
        browser(store("n", 1))
        if browser is raising:
            error = browser.fail(kill_then_write)
            figures.cases += 1
            assert isinstance(error, TYPED), error
        else:
            degraded_request(browser, figures, kill_then_write)
        figures.failed_in(time.monotonic() - killed_at[-1])
        figures.limit = TIMEOUT + SLACK
        target.start()
        # The server's memory went with it: a new session, at once.
        assert first_after_recovery(browser, figures, peek) == (False, True, {})
    count_fds(target, figures, baseline)
    first_after_recovery(raising, figures, store("n", 3))
    count_orphans(target, figures, raising)
    check(figures)


def test_server_hung(target: Target) -> None:
    figures = record(Figures(target.backend, "hung (SIGSTOP)"))
    raising, degrading = target.browser(), target.browser(on_backend_error="degrade")
    raising(store("n", 1))
    degrading(store("n", 1))
    baseline = held_fds(target)
    target.pause()
    try:
        typed_failure(raising, target, figures, store("n", 2), 1.5 * TIMEOUT)
        started = time.monotonic()
        # The file backend's reads take no lock: that session loads, and its save is dropped.
        degraded, _, _ = degraded_request(degrading, figures, peek)
        assert degraded is (target.backend != "file")
        degraded_request(degrading, figures, store("n", 2))
        figures.failed_in((time.monotonic() - started) / 2)
    finally:
        target.resume()
    # Nothing the degraded requests did was saved.
    assert first_after_recovery(raising, figures, peek) == (False, False, {"n": 1})
    assert first_after_recovery(degrading, figures, peek) == (False, False, {"n": 1})
    first_after_recovery(degrading, figures, store("n", 3))
    count_fds(target, figures, baseline)
    count_orphans(target, figures, raising, degrading)
    check(figures)


@pytest.mark.parametrize("target", ["memcache", "redis", "datastore"], indirect=True)
def test_server_restarted(target: Target) -> None:
    figures = record(Figures(target.backend, "restarted", limit=TIMEOUT + SLACK))
    browser = target.browser()
    for n in range(3):  # several pooled connections to the process about to go
        browser(store("n", n))
    baseline = held_fds(target)
    target.stop()
    target.start()
    assert first_after_recovery(browser, figures, peek) == (False, True, {})
    first_after_recovery(browser, figures, store("n", 1))
    count_fds(target, figures, baseline)
    count_orphans(target, figures, browser)
    check(figures)


def test_flaps(target: Target) -> None:
    flaps = FLAPS.get(target.backend, DATASTORE_FLAPS)
    figures = record(Figures(target.backend, f"{flaps} flaps"))
    raising = target.browser(via_proxy=True)
    degrading = target.browser(via_proxy=True, on_backend_error="degrade")
    raising(store("n", 1))
    degrading(store("n", 1))
    baseline = held_fds(target)
    for _ in range(flaps):
        target.flap_down()
        try:
            typed_failure(raising, target, figures, peek, TIMEOUT + SLACK, target.flap_address)
            started = time.monotonic()
            assert degraded_request(degrading, figures, peek) == (True, True, {})
            figures.failed_in(time.monotonic() - started)
        finally:
            target.flap_up()
        assert first_after_recovery(raising, figures, peek) == (False, False, {"n": 1})
    first_after_recovery(degrading, figures, store("n", 2))
    count_fds(target, figures, baseline)
    count_orphans(target, figures, raising, degrading)
    check(figures)


@pytest.mark.parametrize("target", ["memcache", "redis"], indirect=True)
def test_after_a_restart_dead_pooled_connections_fail_no_request(target: Target) -> None:
    browser = target.browser()
    browser(store("n", 1))
    backend, key = backend_of(browser), stored_key(browser)
    # Reads at once leave several idle connections in the client's pool.
    at_once = threading.Barrier(8)

    def read() -> None:
        at_once.wait()
        backend.read(key)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target.stop()
    target.start()
    # Every pooled connection is dead now; none of them may fail a request.
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_degraded_is_false_on_a_served_session_and_read_only(tmp_path: Path) -> None:
    browser = Browser(default_backend="file", file={"path": str(tmp_path)})
    assert browser(lambda h: h.session.degraded) is False
    error = browser.fail(lambda h: setattr(h.session, "degraded", True))
    assert isinstance(error, AttributeError)
