"""Start and stop real backend servers (memcached, redis, Datastore emulator) for tests.

The session library is only worth testing against the real thing, so the test
suite runs real server processes on free loopback ports. This module knows
nothing about pytest; ``tests/server_fixtures.py`` wraps it in fixtures.

Safety rules this module keeps:

* Every server runs in its own process group (``start_new_session=True``) and
  is stopped by signalling exactly that group, never by process name, so
  neither the developer's own servers nor the services the Debian packages
  start on the default ports (11211, 6379) are ever touched.
* Ports come from the kernel (bind to port 0), never the default ports.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
DATASTORE_TEST_PROJECT = "tipsessions-test"

# Default ports of memcached, redis and the Datastore emulator: the Debian
# packages' services or a developer's own servers may hold them, and tests
# must never talk to those by accident.
_DEFAULT_SERVICE_PORTS = frozenset({6379, 8081, 11211})

_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 1.0
_LOG_TAIL_LINES = 40

ReadinessProbe = Callable[[str, int], bool]
"""Answers whether the server at (host, port) is ready to serve requests."""


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the end of its log."""


class ServerExitedDuringStartup(ServerStartError):
    """The server process ended before it was ready (often: its port was taken)."""


class PortInUseError(ServerStartError):
    """Something else already listens on the port the server was meant to use."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    The port is only free at the moment of the call: another process may take
    it before our server binds it. ``start_on_free_port`` handles that race
    by retrying on a new port.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _DEFAULT_SERVICE_PORTS:
            return port


def accepts_connections(host: str, port: int, timeout: float = _PROBE_TIMEOUT) -> bool:
    """True when a TCP connection to (host, port) succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _first_reply_line(host: str, port: int, request: bytes) -> bytes:
    """Send one request line and return the first line of the reply ('' on failure)."""
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.sendall(request)
            reply = b""
            while b"\n" not in reply:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\n", 1)[0]
    except OSError:
        return b""


def memcached_is_ready(host: str, port: int) -> bool:
    """memcached answers ``version`` with ``VERSION x.y.z``."""
    return _first_reply_line(host, port, b"version\r\n").startswith(b"VERSION ")


def redis_is_ready(host: str, port: int) -> bool:
    """redis answers ``PING`` with ``+PONG`` (``-LOADING`` while it is still starting)."""
    return _first_reply_line(host, port, b"PING\r\n").startswith(b"+PONG")


def datastore_emulator_is_ready(host: str, port: int) -> bool:
    """The emulator's health endpoint ``GET /`` answers ``Ok``.

    The port opens before the emulator can serve requests, so a bare TCP
    connect is not enough.
    """
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=_PROBE_TIMEOUT) as reply:
            body: bytes = reply.read()
    except (OSError, http.client.HTTPException):
        return False
    return body.strip() == b"Ok"


def _state_and_group(stat_file: Path) -> tuple[str, int] | None:
    """(state, process group) from a /proc stat file, None if the task is gone."""
    try:
        stat = stat_file.read_text()
    except OSError:
        return None
    # The command name (2nd field) may contain spaces and parentheses; the
    # fields after its last closing parenthesis are: state ppid pgrp ...
    state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
    return state, int(pgrp)


def _group_thread_states(pgid: int) -> list[str]:
    """The state letter of every thread of every process in group ``pgid``."""
    states = []
    for process_dir in Path("/proc").glob("[0-9]*"):
        process = _state_and_group(process_dir / "stat")
        if process is None or process[1] != pgid:
            continue
        for task_stat in process_dir.glob("task/*/stat"):
            task = _state_and_group(task_stat)
            if task is not None:
                states.append(task[0])
    return states


def _group_has_live_members(pgid: int) -> bool:
    """True while any process of group ``pgid`` still has a running thread.

    Zombies do not count: the emulator's wrapper processes are orphaned when
    gcloud exits first, and a container's init may be slow to reap them. But a
    process counts as live while any of its threads is: when Java is killed
    its main thread turns zombie first while other threads are still tearing
    down and still hold the listening socket open.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for process_dir in proc.glob("[0-9]*"):
        process = _state_and_group(process_dir / "stat")
        if process is None or process[1] != pgid:
            continue
        for task_stat in process_dir.glob("task/*/stat"):
            task = _state_and_group(task_stat)
            if task is not None and task[0] != "Z":
                return True
    return False


_running_servers: set[ServerProcess] = set()


@atexit.register
def _stop_leftover_servers() -> None:
    """Stop servers a crashed or interrupted test run did not stop itself."""
    for server in list(_running_servers):
        server.kill()


class ServerProcess:
    """One server process on a fixed port that can be started, killed and started again.

    The port stays the same across restarts so a client configured with
    ``address`` sees the server go away and come back, as in production.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        is_ready: ReadinessProbe,
        port: int,
        log_path: Path,
        *,
        host: str = LOOPBACK,
        startup_timeout: float = 10.0,
        stop_grace: float = 10.0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.last_startup_seconds: float | None = None
        self._command = command
        self._is_ready = is_ready
        self._env = env
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} {self.address} running={self.is_running}>"

    @property
    def address(self) -> str:
        """``host:port``, the form memcached clients and DATASTORE_EMULATOR_HOST use."""
        return f"{self.host}:{self.port}"

    @property
    def is_running(self) -> bool:
        """True between a successful ``start()`` and the next ``stop()``/``kill()``."""
        return self._process is not None

    def start(self) -> None:
        """Start the server and return once it answers; raise ServerStartError otherwise."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} on {self.address} is already running")
        # Without this check the readiness probe could be answered by the
        # other listener while our server is still failing to bind.
        if accepts_connections(self.host, self.port):
            raise PortInUseError(f"cannot start {self.name}: {self.address} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        # Append, so a restarted server's log keeps what happened before the restart.
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {self.name} on {self.address}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self._env,
                cwd=self._cwd,
            )
        _running_servers.add(self)
        deadline = began + self.startup_timeout
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._forget_process()
                what = f"exited with status {exit_code} during startup"
                raise ServerExitedDuringStartup(self._failure_message(what))
            if self._is_ready(self.host, self.port) and self._process.poll() is None:
                self.last_startup_seconds = time.monotonic() - began
                return
            if time.monotonic() > deadline:
                self.kill()
                what = f"was not ready after {self.startup_timeout:g} s"
                raise ServerStartError(self._failure_message(what))
            time.sleep(_POLL_INTERVAL)

    def stop(self) -> None:
        """Stop gracefully: SIGTERM to the process group, then SIGKILL after ``stop_grace`` s."""
        if self._process is None:
            return
        self._signal_group(signal.SIGTERM)
        # A paused server would leave SIGTERM pending until it is continued.
        self._signal_group(signal.SIGCONT)
        if not self._wait_for_group_exit(self.stop_grace):
            self._signal_group(signal.SIGKILL)
            self._wait_for_group_exit(self.stop_grace)
        self._forget_process()

    def kill(self) -> None:
        """Kill the whole process group at once, as a crash would; returns when it is gone."""
        if self._process is None:
            return
        self._signal_group(signal.SIGKILL)
        self._wait_for_group_exit(self.stop_grace)
        self._forget_process()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections but never answers (a hung host)."""
        if self._process is None:
            raise RuntimeError(f"{self.name} on {self.address} is not running")
        self._signal_group(signal.SIGSTOP)
        # Signals arrive asynchronously: on another core the server could
        # still answer the next request. Return once every thread has stopped.
        deadline = time.monotonic() + 5
        while any(state not in "TtZX" for state in _group_thread_states(self._process.pid)):
            if time.monotonic() > deadline:
                raise ServerStartError(f"{self.name} on {self.address} did not stop on SIGSTOP")
            time.sleep(0.005)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        if self._process is None:
            raise RuntimeError(f"{self.name} on {self.address} is not running")
        self._signal_group(signal.SIGCONT)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._process is not None
        # The group id is the leader's pid (start_new_session). It cannot be
        # reused by someone else while any member, even a zombie leader we
        # have not reaped yet, still exists, so this reaches only our server.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _wait_for_group_exit(self, timeout: float) -> bool:
        """Reap the leader and wait until no process of the group is alive."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            self._process.poll()  # reap the leader so it does not linger as a zombie
            if not _group_has_live_members(self._process.pid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_INTERVAL)

    def _forget_process(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=self.stop_grace)
        self._process = None
        _running_servers.discard(self)

    def _failure_message(self, what_happened: str) -> str:
        return (
            f"{self.name} on {self.address} {what_happened}.\n"
            f"Command: {shlex.join(self._command)}\n"
            f"Last lines of {self.log_path}:\n{self.log_tail()}"
        )


def find_binary(name: str, install_hint: str) -> str:
    """Full path of ``name`` on PATH, or a ServerStartError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ServerStartError(f"{name} not found on PATH ({install_hint})")
    return path


def memcached_server(log_dir: Path, port: int | None = None) -> ServerProcess:
    """A (not yet started) memcached with 64 MB of memory and UDP off."""
    binary = find_binary("memcached", "apt-get install -y memcached")
    # memcached refuses to start as root unless told which user to run as.
    run_as = ["-u", "root"] if os.geteuid() == 0 else []
    port = port or free_port()
    return ServerProcess(
        "memcached",
        [binary, "-l", LOOPBACK, "-p", str(port), "-U", "0", "-m", "64", *run_as],
        memcached_is_ready,
        port,
        log_dir / f"memcached-{port}.log",
    )


def redis_server(
    log_dir: Path, port: int | None = None, extra_args: Sequence[str] = ()
) -> ServerProcess:
    """A (not yet started) redis-server that keeps everything in memory only."""
    binary = find_binary("redis-server", "apt-get install -y redis-server")
    port = port or free_port()
    return ServerProcess(
        "redis-server",
        [
            binary,
            "--bind",
            LOOPBACK,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            *extra_args,
        ],
        redis_is_ready,
        port,
        log_dir / f"redis-{port}.log",
        # redis writes nothing with these settings, but if it ever did, it would
        # write into its working directory: keep that out of the checkout.
        cwd=log_dir,
    )


def datastore_emulator(log_dir: Path, port: int | None = None) -> ServerProcess:
    """A (not yet started) Cloud Datastore emulator, in memory, strongly consistent.

    gcloud runs a bash wrapper that runs Java, so the server is three processes
    in one group; ``stop()``/``kill()`` signal the whole group.
    """
    binary = find_binary("gcloud", "install the Google Cloud SDK and its cloud-datastore-emulator")
    port = port or free_port()
    # Each emulator gets its own --data-dir: the default (~/.config/gcloud/
    # emulators/datastore) is shared, and gcloud rewrites files there on every
    # start, which races when a shared and a private emulator start together.
    data_dir = log_dir / f"datastore-{port}"
    env = {
        **os.environ,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        # There is no network for the update check to reach; don't let it try.
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    }
    return ServerProcess(
        "datastore-emulator",
        [
            binary,
            "beta",
            "emulators",
            "datastore",
            "start",
            "--no-store-on-disk",
            "--consistency=1.0",
            f"--host-port={LOOPBACK}:{port}",
            f"--project={DATASTORE_TEST_PROJECT}",
            f"--data-dir={data_dir}",
        ],
        datastore_emulator_is_ready,
        port,
        log_dir / f"datastore-{port}.log",
        startup_timeout=60.0,
        env=env,
    )


def start_on_free_port(
    make_server: Callable[[Path, int | None], ServerProcess],
    log_dir: Path | None = None,
    attempts: int = 3,
) -> ServerProcess:
    """Build a server on a fresh free port and start it, retrying on a new port.

    A retry covers the race in ``free_port``: if another process grabbed the
    port first, our server finds it in use or exits during startup, and the
    next attempt picks a different port. A server that merely starts too
    slowly is not retried.
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tipsessions-servers-"))
    for _ in range(attempts - 1):
        server = make_server(log_dir, None)
        try:
            server.start()
            return server
        except (PortInUseError, ServerExitedDuringStartup):
            continue
    server = make_server(log_dir, None)
    server.start()
    return server


def redis_url(address: str, db: int = 0) -> str:
    """``redis://host:port/db`` for a ``host:port`` address."""
    return f"redis://{address}/{db}"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; ServerStartError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what} did not happen within {timeout:g} s")
        time.sleep(_POLL_INTERVAL)


def _bulk_reply(host: str, port: int, command: str) -> str:
    """The bulk-string reply of a redis command, as text ('' on failure or an error reply)."""
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.sendall(f"{command}\r\n".encode())
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    return ""
                reply += chunk
            header, _, body = reply.partition(b"\r\n")
            if not header.startswith(b"$"):
                return ""
            length = int(header[1:])
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return ""
                body += chunk
    except (OSError, ValueError):
        return ""
    return body[:length].decode(errors="replace")


def _fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields[name] = value
    return fields


def redis_info(host: str, port: int, section: str) -> dict[str, str]:
    """``INFO section`` of a redis server or sentinel ({} when unreachable)."""
    return _fields(_bulk_reply(host, port, f"INFO {section}"))


class ServerGroup:
    """Several server processes that make up one service, stopped together."""

    def __init__(self, members: list[ServerProcess]) -> None:
        self.members = members

    def kill(self) -> None:
        for member in self.members:
            member.kill()

    def __enter__(self) -> ServerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


class RedisCluster(ServerGroup):
    """Masters of a Redis Cluster, every slot assigned, no replicas."""

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.members]


def _cluster_node(log_dir: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    args = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
    # A short node timeout keeps a failover quick should a test provoke one.
    return redis_server(log_dir, port, [*args, "--cluster-node-timeout", "2000"])


def start_redis_cluster(log_dir: Path, masters: int = 3) -> RedisCluster:
    """Start ``masters`` cluster-enabled redis-servers and join them with ``redis-cli``.

    Returns once every node reports ``cluster_state:ok``.
    """
    cli = find_binary("redis-cli", "apt-get install -y redis-tools")
    cluster = RedisCluster([])
    try:
        for _ in range(masters):
            cluster.members.append(start_on_free_port(_cluster_node, log_dir))
        addresses = [node.address for node in cluster.members]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        if created.returncode != 0:
            output = (created.stdout + created.stderr).decode(errors="replace")
            raise ServerStartError(f"redis-cli --cluster create failed:\n{output}")
        wait_until(
            lambda: all(
                redis_info(node.host, node.port, "cluster").get("cluster_enabled") == "1"
                and _cluster_state(node) == "ok"
                for node in cluster.members
            ),
            30,
            "the cluster's state becoming ok on every node",
        )
    except BaseException:
        cluster.kill()
        raise
    return cluster


def _cluster_state(node: ServerProcess) -> str:
    return _fields(_bulk_reply(node.host, node.port, "CLUSTER INFO")).get("cluster_state", "")


class SentinelGroup(ServerGroup):
    """A master, its replica and three sentinels watching them under ``service_name``."""

    def __init__(
        self, service_name: str, servers: list[ServerProcess], sentinels: list[ServerProcess]
    ) -> None:
        super().__init__([*servers, *sentinels])
        self.service_name = service_name
        self.servers = servers
        self.sentinels = sentinels

    @property
    def sentinel_nodes(self) -> list[tuple[str, int]]:
        return [(sentinel.host, sentinel.port) for sentinel in self.sentinels]

    def master(self) -> ServerProcess:
        """The server every sentinel names as master, once they agree."""
        named = {self._master_of(sentinel) for sentinel in self.sentinels}
        for server in self.servers:
            if named == {server.address} and self._role(server) == "master":
                return server
        raise ServerStartError(f"the sentinels do not agree on a master: {named}")

    def settled(self) -> bool:
        """One master named by every sentinel, and the other server replicating it."""
        try:
            master = self.master()
        except ServerStartError:
            return False
        return all(server is master or self._replicates(server, master) for server in self.servers)

    def wait_replicated(self, timeout: float = 10) -> None:
        """Return once the replica holds every write the master has taken so far."""
        master = self.master()

        def caught_up() -> bool:
            info = redis_info(master.host, master.port, "replication")
            replica = dict(
                part.partition("=")[::2] for part in info.get("slave0", "").split(",") if part
            )
            return replica.get("offset") == info.get("master_repl_offset")

        wait_until(caught_up, timeout, "the replica catching up")

    def failover(self, timeout: float = 60) -> ServerProcess:
        """``SENTINEL FAILOVER`` and wait until the group has settled on the other server."""
        before = self.master()
        sentinel = self.sentinels[0]
        reply = _first_reply_line(
            sentinel.host, sentinel.port, f"SENTINEL FAILOVER {self.service_name}\r\n".encode()
        )
        if not reply.startswith(b"+OK"):
            raise ServerStartError(f"SENTINEL FAILOVER was refused: {reply!r}")
        wait_until(lambda: self.settled() and self.master() is not before, timeout, "the failover")
        return self.master()

    def _master_of(self, sentinel: ServerProcess) -> str:
        info = redis_info(sentinel.host, sentinel.port, "sentinel")
        # master0:name=...,status=ok,address=127.0.0.1:1234,slaves=1,sentinels=3
        fields = dict(
            part.partition("=")[::2] for part in info.get("master0", "").split(",") if part
        )
        if fields.get("status") != "ok" or fields.get("sentinels") != str(len(self.sentinels)):
            return ""
        return fields.get("address", "")

    def _role(self, server: ServerProcess) -> str:
        return redis_info(server.host, server.port, "replication").get("role", "")

    def _replicates(self, server: ServerProcess, master: ServerProcess) -> bool:
        info = redis_info(server.host, server.port, "replication")
        return (
            info.get("role") == "slave"
            and info.get("master_port") == str(master.port)
            and info.get("master_link_status") == "up"
        )


def _sentinel(
    log_dir: Path, service_name: str, master: ServerProcess, port: int | None = None
) -> ServerProcess:
    binary = find_binary("redis-server", "apt-get install -y redis-server")
    port = port or free_port()
    # Sentinel rewrites its configuration file as it learns: one file each.
    config = log_dir / f"sentinel-{port}.conf"
    config.write_text(
        f"bind {LOOPBACK}\nport {port}\ndir {log_dir}\n"
        f"sentinel monitor {service_name} {master.host} {master.port} 2\n"
        f"sentinel down-after-milliseconds {service_name} 1000\n"
        f"sentinel failover-timeout {service_name} 10000\n"
    )
    return ServerProcess(
        "redis-sentinel",
        [binary, str(config), "--sentinel"],
        redis_is_ready,
        port,
        log_dir / f"sentinel-{port}.log",
        cwd=log_dir,
    )


def start_sentinel_group(log_dir: Path, service_name: str = "tipsess-test") -> SentinelGroup:
    """Start a master, a replica of it and three sentinels; return once they agree."""
    servers: list[ServerProcess] = []
    sentinels: list[ServerProcess] = []
    group = SentinelGroup(service_name, servers, sentinels)
    try:
        # Without the default 5 s pause before a full sync, a demoted master
        # catches up with its new master at once.
        quick_sync = ["--repl-diskless-sync-delay", "0"]
        master = start_on_free_port(lambda d, p: redis_server(d, p, quick_sync), log_dir)
        servers.append(master)
        replica_args = [*quick_sync, "--replicaof", master.host, str(master.port)]
        servers.append(start_on_free_port(lambda d, p: redis_server(d, p, replica_args), log_dir))
        for _ in range(3):
            sentinels.append(
                start_on_free_port(lambda d, p: _sentinel(d, service_name, master, p), log_dir)
            )
        group.members = [*servers, *sentinels]
        # Sentinels find the replica and each other through the master (every
        # few seconds); a failover needs them to.
        wait_until(group.settled, 30, "the sentinels agreeing on the master and its replica")
    except BaseException:
        group.members = [*servers, *sentinels]
        group.kill()
        raise
    return group


#: The environment variable that gives the app processes their configuration.
APP_CONFIG_ENV = "TIPSESS_APP_CONFIG"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def app_is_ready(host: str, port: int) -> bool:
    """The test app answers ``GET /ping`` with ``ok``."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=_PROBE_TIMEOUT) as reply:
            body: bytes = reply.read()
    except (OSError, http.client.HTTPException):
        return False
    return body == b"ok"


def app_server(log_dir: Path, config: Path, port: int | None = None) -> ServerProcess:
    """A (not yet started) waitress process serving ``tests.multiprocess_app``.

    ``config`` is a JSON file holding the app's ``config["tipsessions"]``.
    """
    port = port or free_port()
    return ServerProcess(
        "app-server",
        [
            sys.executable,
            "-m",
            "waitress",
            f"--listen={LOOPBACK}:{port}",
            "--threads=8",
            "tests.multiprocess_app:app",
        ],
        app_is_ready,
        port,
        log_dir / f"app-{port}.log",
        startup_timeout=30.0,
        env={**os.environ, APP_CONFIG_ENV: str(config)},
        cwd=_REPO_ROOT,
    )


class FlakyProxy:
    """A TCP relay on a fixed loopback port that can drop out and come back at once.

    A restart of the Datastore emulator takes seconds; a network flap in
    front of it reproduces what the client sees (its connections reset,
    then refused, then accepted again) in milliseconds, so a test can flap
    a hundred times. ``down()`` closes the listener and resets every relayed
    connection; ``up()`` listens again on the same port.
    """

    def __init__(self, target: str, host: str = LOOPBACK) -> None:
        target_host, _, target_port = target.rpartition(":")
        self.target = (target_host, int(target_port))
        self.host = host
        self.port = free_port(host)
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Stop listening and reset every relayed connection; returns once done."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the accept() blocked in the other thread.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            # Linger 0: a reset, as when the server's host goes away.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.down()

    def fds(self) -> set[int]:
        """The descriptors of the relay's own sockets, for tests that count a process's."""
        with self._lock:
            sockets = [*self._sockets, *([self._listener] if self._listener else [])]
        return {sock.fileno() for sock in sockets} - {-1}

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=_PROBE_TIMEOUT)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                self._sockets.discard(source)
            with contextlib.suppress(OSError):
                source.close()


@contextlib.contextmanager
def memcached_nodes(count: int, log_dir: Path) -> Iterator[list[ServerProcess]]:
    """``count`` memcached of the caller's own, each killed when the block ends."""
    with contextlib.ExitStack() as stack:
        nodes = []
        for _ in range(count):
            node = start_on_free_port(memcached_server, log_dir)
            stack.callback(node.kill)
            nodes.append(node)
        yield nodes


def memcached_holds(node: ServerProcess, key: str) -> bool:
    """Whether the memcached ``node`` has an item under ``key``, asked directly."""
    from pymemcache.client.base import Client

    client = Client(node.address, connect_timeout=1, timeout=1)
    try:
        return client.get(key) is not None
    finally:
        client.close()
