"""A measuring process: builds the cells and times them on command.

A cell is one thing to time: a page of a variant with one payload
(``ts:securecookie|write|small``) or a raw floor (``raw:redis|get|large``).
The coordinator (``measure``) decides the order; this process only runs
what it is told, so that two of them, each importing its own tipsessions,
can be measured in the same interleaved rounds.

It speaks JSON lines: commands on stdin, replies on the original stdout.
Anything a library prints goes to stderr instead.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KINDS = ("untouched", "read", "write")
SIZES = ("small", "large")


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


class WsgiCell:
    """One page of one application, requested with the cookie its seed page set."""

    def __init__(self, app: Callable[..., Any], kind: str, size: str, fixed_cookie: str = ""):
        self.app = app
        self.kind = kind
        self.size = size
        self.fixed_cookie = fixed_cookie
        self.cookie = ""
        self.environ: dict[str, Any] = {}

    def prepare(self) -> None:
        """A fresh seeded session for each batch, so no batch ever sees a refresh come due."""
        import webob

        self.cookie = self.fixed_cookie or self._seed()
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.environ = webob.Request.blank(f"/{self.kind}", headers=headers).environ
        status, body = self._request()
        expected = b"42" if self.kind == "read" else b"ok"
        if not status.startswith("200") or body != expected:
            raise RuntimeError(f"/{self.kind} answered {status} {body[:200]!r}")

    def _seed(self) -> str:
        import webob

        response = webob.Request.blank(f"/seed/{self.size}").get_response(self.app)
        if response.status_int != 200:
            raise RuntimeError(f"/seed/{self.size} answered {response.status}")
        pairs = [header.split(";", 1)[0] for header in response.headers.getall("Set-Cookie")]
        if not pairs:
            raise RuntimeError(f"/seed/{self.size} set no cookie")
        return "; ".join(pairs)

    def _request(self) -> tuple[str, bytes]:
        answer: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            answer.append(status)

        body = self.app(dict(self.environ), start_response)
        try:
            return answer[0], b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()

    def run(self, n: int) -> float:
        app, environ = self.app, self.environ
        started = time.perf_counter()
        for _ in range(n):
            body = app(environ.copy(), _start_response)
            for _chunk in body:
                pass
            if hasattr(body, "close"):
                body.close()
        return time.perf_counter() - started


class CallCell:
    """A raw floor: one call of a prepared callable."""

    def __init__(self, call: Callable[[], Any]):
        self.call = call

    def prepare(self) -> None:
        self.call()

    def run(self, n: int) -> float:
        call = self.call
        started = time.perf_counter()
        for _ in range(n):
            call()
        return time.perf_counter() - started


Cell = WsgiCell | CallCell


def build_cells(group: str, context: Any) -> dict[str, Cell]:
    from . import floors
    from .apps import BARE, BOUND, PEERS, TIPSESSIONS

    variants = list(TIPSESSIONS.values())
    if group == "all":
        variants += [*BOUND.values(), *BARE.values(), *PEERS.values()]
    cells: dict[str, Cell] = {}
    for variant in variants:
        key = variant.key
        app = variant.build(context)
        for size in SIZES:
            # The bare frameworks get a session-sized cookie they never read.
            fixed = f"session={floors.signed(size)}" if key.startswith("bare:") else ""
            for kind in KINDS:
                cells[f"{key}|{kind}|{size}"] = WsgiCell(app, kind, size, fixed)
    if group == "all":
        for size in SIZES:
            cells[f"raw:cookie|read|{size}"] = CallCell(floors.cookie_read(size))
            cells[f"raw:cookie|write|{size}"] = CallCell(floors.cookie_write(size))
            key = f"{context.prefix}raw-{size}"
            cells[f"raw:memcache|get|{size}"] = CallCell(
                floors.memcache_get(context.memcached, key, size)
            )
            cells[f"raw:redis|get|{size}"] = CallCell(
                floors.redis_get(context.redis_url, key, size)
            )
    return cells


@contextmanager
def counted_datastore_rpcs() -> Iterator[collections.Counter[str]]:
    """Count the RPCs the Datastore client sends, at the client's API boundary.

    The emulator keeps no request counters, so this is the closest place to
    the server: every method of the generated client is one RPC.
    """
    from google.cloud.datastore_v1.services.datastore.client import DatastoreClient

    counts: collections.Counter[str] = collections.Counter()
    names = (
        "lookup",
        "run_query",
        "run_aggregation_query",
        "begin_transaction",
        "commit",
        "rollback",
        "allocate_ids",
        "reserve_ids",
    )
    originals = {name: getattr(DatastoreClient, name) for name in names}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(self, *args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DatastoreClient, name, counting(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(DatastoreClient, name, original)


def _where(filename: str) -> str:
    """A short, stable name for a source file: from the package folder on."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    for package in ("tipsessions", "bench"):
        if package in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(package) :])
    return "/".join(parts[-2:])


def profile(cell: Cell, n: int, top: int) -> dict[str, Any]:
    """cProfile ``n`` requests: the heaviest functions per request, by own and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    cell.run(n)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    total_calls = 0
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in stats.items():
        if filename.endswith(("bench/worker.py", "cProfile.py")) or function == "disable":
            continue
        total_calls += calls
        name = f"{_where(filename)}:{line}({function})" if line else function
        rows.append(
            {"function": name, "calls": calls / n, "own": own / n, "cumulative": cumulative / n}
        )
    by_own = sorted(rows, key=lambda row: row["own"], reverse=True)[:top]
    by_cumulative = sorted(rows, key=lambda row: row["cumulative"], reverse=True)[: top * 2]
    return {"calls": total_calls / n, "by_own": by_own, "by_cumulative": by_cumulative}


def serve(cells: dict[str, Cell], replies: Any) -> None:
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        reply: dict[str, Any] = {}
        try:
            if op == "hello":
                import tipsessions

                reply = {"tipsessions": tipsessions.__file__, "cells": sorted(cells)}
            elif op == "run":
                cell = cells[command["cell"]]
                if command.get("prepare", True):
                    cell.prepare()
                reply = {"seconds": cell.run(command["n"])}
            elif op == "cookie":
                cell = cells[command["cell"]]
                assert isinstance(cell, WsgiCell)
                cell.prepare()
                reply = {"cookie": cell.cookie}
            elif op == "datastore_rpcs":
                with counted_datastore_rpcs() as counts:
                    cells[command["cell"]].run(command["n"])
                reply = {"counts": dict(counts)}
            elif op == "profile":
                cell = cells[command["cell"]]
                cell.prepare()
                cell.run(command["n"])
                reply = profile(cell, command["n"], command.get("top", 12))
            elif op == "quit":
                return
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as error:  # reported to the coordinator, which stops the run
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", choices=("all", "tipsessions"), default="all")
    parser.add_argument("--tipsessions-root", help="import tipsessions from this folder")
    parser.add_argument("--context", required=True, help="the apps.Context, as JSON")
    args = parser.parse_args()
    # Replies go on a copy of stdout; whatever a library prints goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if args.tipsessions_root:
        sys.path.insert(0, args.tipsessions_root)
    from .apps import Context

    context = Context(**json.loads(args.context))
    serve(build_cells(args.group, context), replies)


if __name__ == "__main__":
    main()
