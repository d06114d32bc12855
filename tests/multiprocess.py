"""Two real app server processes and clients that alternate between them.

A load balancer spreads a visitor's requests over every app process, so a
session must read the same whichever process serves it. ``AppPair`` runs
``tests.multiprocess_app`` in two waitress processes on free loopback
ports; ``Visitor`` is one browser whose every request goes to the other
process than the last. The measures here are the figures the multi-process
tests report: continuity, lost writes, and server errors.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import servers
from tests.servers import ServerProcess

_REQUEST_TIMEOUT = 30.0


class AppPair:
    """Two app processes serving the same app, each from its own settings file."""

    def __init__(self, log_dir: Path, processes: list[ServerProcess]) -> None:
        self.log_dir = log_dir
        self.processes = processes

    @property
    def urls(self) -> list[str]:
        return [f"http://{p.address}" for p in self.processes]

    def deploy(self, index: int, settings: dict[str, Any]) -> None:
        """Restart process ``index`` with new settings, as one step of a rolling deploy."""
        process = self.processes[index]
        process.stop()
        _settings_file(self.log_dir, process.port).write_text(json.dumps(settings))
        process.start()


def _settings_file(log_dir: Path, port: int) -> Path:
    return log_dir / f"app-{port}.json"


def _start_app(log_dir: Path, settings: dict[str, Any]) -> ServerProcess:
    for _ in range(3):  # a port taken meanwhile: another one
        port = servers.free_port()
        config = _settings_file(log_dir, port)
        config.write_text(json.dumps(settings))
        process = servers.app_server(log_dir, config, port)
        try:
            process.start()
            return process
        except servers.PortInUseError:
            continue
    process.start()
    return process


@contextmanager
def app_pair(
    log_dir: Path, settings: dict[str, Any], other: dict[str, Any] | None = None
) -> Iterator[AppPair]:
    """Two app processes on ``settings`` (the second on ``other`` if given)."""
    with ExitStack() as stack:
        processes = []
        for each in (settings, settings if other is None else other):
            process = _start_app(log_dir, each)
            stack.callback(process.kill)
            processes.append(process)
        yield AppPair(log_dir, processes)


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Visitor:
    """One browser: a cookie jar, and requests that alternate between the processes."""

    pair: AppPair
    turn: int = 0
    cookies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, path: str) -> Reply:
        with self.lock:
            url = self.pair.urls[self.turn % 2] + path
            self.turn += 1
            cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
        try:
            with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT) as answer:
                reply, headers = Reply(answer.status, answer.read()), answer.headers
        except urllib.error.HTTPError as error:
            reply, headers = Reply(error.code, error.read()), error.headers
        for header in headers.get_all("Set-Cookie") or []:
            self._keep(header)
        return reply

    def _keep(self, header: str) -> None:
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        with self.lock:
            if "max-age=0" in header.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


@dataclass
class Tally:
    """Requests that carried the session on, out of all, and server errors."""

    carried: int = 0
    requests: int = 0
    server_errors: int = 0
    #: Server errors that were not a typed BackendUnavailable (a 500).
    untyped: int = 0
    lost: int = 0
    writes: int = 0

    def count_error(self, reply: Reply) -> None:
        if reply.status >= 500:
            self.server_errors += 1
            if not reply.body.startswith(b"BackendUnavailable"):
                self.untyped += 1

    @property
    def continuity(self) -> float:
        return 100.0 * self.carried / self.requests if self.requests else 0.0


def measure_continuity(
    pair: AppPair, backend: str, visitors: int = 10, requests: int = 10
) -> Tally:
    """Each visitor counts up in its session, alternating processes on every request."""
    tally = Tally()
    for number in range(visitors):
        visitor = Visitor(pair, turn=number)
        for expected in range(1, requests + 1):
            reply = visitor.get(f"/{backend}/count")
            tally.count_error(reply)
            tally.requests += 1
            if reply.status == 200 and reply.json()["n"] == expected:
                tally.carried += 1
    return tally


def measure_lost_writes(
    pair: AppPair, backend: str, *, shared: bool, threads: int = 8, writes: int = 50
) -> Tally:
    """``threads`` clients write ``writes`` keys each at once, over both processes.

    ``shared``: every thread writes into one session (server-side backends
    merge concurrent saves); otherwise each has a session of its own (a
    cookie session holds only what its last response carried).
    """
    tally = Tally(writes=threads * writes)
    first = Visitor(pair)
    first.get(f"/{backend}/write/start")
    visitors = [
        Visitor(pair, turn=t, cookies=dict(first.cookies) if shared else {}) for t in range(threads)
    ]
    errors: list[Reply] = []
    start = threading.Barrier(threads)

    def run(number: int) -> None:
        start.wait()
        for w in range(writes):
            reply = visitors[number].get(f"/{backend}/write/t{number}w{w}")
            if reply.status != 200:
                errors.append(reply)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for reply in errors:
        tally.count_error(reply)
    found: set[str] = set()
    for visitor in visitors[:1] if shared else visitors:
        found |= set(visitor.get(f"/{backend}/read").json()["data"])
    expected = {f"t{t}w{w}" for t in range(threads) for w in range(writes)}
    tally.lost = len(expected - found)
    return tally
