"""Requests per second over real HTTP: gunicorn with one sync worker, driven by wrk on loopback.

One gunicorn per row runs for the whole measurement; wrk hits them in
interleaved rounds, each run with a freshly issued session cookie. wrk
keeps two connections open so the worker always has the next request
waiting: the figure is the server's capacity, not wrk's round trip.
"""

from __future__ import annotations

import functools
import random
import re
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    LOOPBACK,
    ServerProcess,
    accepts_connections,
    find_binary,
    free_port,
    start_on_free_port,
)

from . import affinity
from .measure import Worker
from .stats import Figure, summarize

# (label, variant key): every row requests /write.
ROWS = (
    ("bare webapp2", "bare:webapp2"),
    ("tipsessions securecookie write", "ts:securecookie"),
    ("webapp2_extras securecookie write", "peer:webapp2_extras"),
    ("Flask cookie session write", "peer:flask"),
)

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class HttpRow:
    label: str
    key: str
    rates: list[float]  # requests per second, one per round
    requests_per_second: Figure
    p99_ms: Figure


def _gunicorn(checkout: Path, key: str, log_dir: Path, port: int | None) -> ServerProcess:
    port = port or free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync"]
    command += ["--bind", f"{LOOPBACK}:{port}", "--log-level", "warning"]
    command.append(f"bench.apps:http_app({key!r})")
    return ServerProcess(
        f"gunicorn {key}",
        affinity.on_measuring_core(command),
        accepts_connections,
        port,
        log_dir / f"gunicorn-{key.replace(':', '-')}.log",
        cwd=checkout,
    )


def wrk(url: str, cookie: str, seconds: float) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) of one wrk run."""
    binary = find_binary("wrk", "apt-get install -y wrk")
    command = [binary, "-t1", "-c2", f"-d{seconds:g}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors on {url}:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if rate is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return float(rate.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)] * 1e3


def measure(
    worker: Worker, checkout: Path, log_dir: Path, seconds: float, rounds: int
) -> list[HttpRow]:
    rates: dict[str, list[float]] = {key: [] for _, key in ROWS}
    p99s: dict[str, list[float]] = {key: [] for _, key in ROWS}
    with ExitStack() as stack:
        urls = {}
        for _, key in ROWS:
            make = functools.partial(_gunicorn, checkout, key)
            server = stack.enter_context(start_on_free_port(make, log_dir))
            urls[key] = f"http://{server.address}/write"
        order = [key for _, key in ROWS]
        for done in range(rounds):
            random.shuffle(order)
            for key in order:
                cookie = worker.call(op="cookie", cell=f"{key}|write|small")["cookie"]
                rate, p99 = wrk(urls[key], cookie, seconds)
                rates[key].append(rate)
                p99s[key].append(p99)
            print(f"  http round {done + 1}/{rounds}", file=sys.stderr, flush=True)
    return [
        HttpRow(label, key, rates[key], summarize(rates[key]), summarize(p99s[key]))
        for label, key in ROWS
    ]
