"""Interleaved, paired rounds over the cells of one or more worker processes.

Each cell first runs a few requests to warm up, then a timed probe sets its
batch size so that every batch takes about the same wall time. Then, round
after round, every cell of every worker runs one batch, in a freshly
shuffled order, until the time budget is spent. The figure a cell gets in
a round is its time per request in that batch.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import affinity
from .apps import Context

CellRef = tuple[str, str]
"""(worker name, cell id), e.g. ("new", "ts:redis|read|small")."""


class BenchError(RuntimeError):
    """A worker could not do what it was asked; the message is the worker's."""


class Worker:
    """A measuring process (``bench.worker``) and the line protocol to it."""

    def __init__(
        self,
        name: str,
        context: Context,
        checkout: Path,
        *,
        group: str = "all",
        tipsessions_root: Path | None = None,
    ) -> None:
        self.name = name
        command = [sys.executable, "-m", "bench.worker", "--group", group]
        command += ["--context", json.dumps(asdict(context))]
        if tipsessions_root is not None:
            command += ["--tipsessions-root", str(tipsessions_root)]
        self.process = subprocess.Popen(
            affinity.on_measuring_core(command),
            cwd=checkout,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self.call(op="hello")
        self.tipsessions_file: str = hello["tipsessions"]
        self.cells: list[str] = hello["cells"]
        expected = (tipsessions_root or checkout).resolve()
        if not Path(self.tipsessions_file).resolve().is_relative_to(expected):
            raise BenchError(f"{name}: imported {self.tipsessions_file}, not the one in {expected}")

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"worker {self.name} exited (code {self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchError(f"worker {self.name}, {command}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BenchError, BrokenPipeError):
                self.call(op="quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def per_request(worker: Worker, cell: str, n: int, *, prepare: bool = True) -> float:
    """Seconds per request over a batch of ``n``."""
    seconds: float = worker.call(op="run", cell=cell, n=n, prepare=prepare)["seconds"]
    return seconds / n


def calibrate(
    workers: dict[str, Worker], cells: list[CellRef], batch_seconds: float
) -> dict[CellRef, int]:
    """Warm each cell up and choose its batch size for about ``batch_seconds`` per batch."""
    sizes = {}
    for worker_name, cell in cells:
        worker = workers[worker_name]
        per_request(worker, cell, 5)
        estimate = per_request(worker, cell, 20)
        sizes[(worker_name, cell)] = max(1, min(100_000, round(batch_seconds / estimate)))
    return sizes


def rounds(
    workers: dict[str, Worker],
    batches: dict[CellRef, int],
    *,
    budget_seconds: float,
    min_rounds: int,
    max_rounds: int,
) -> dict[CellRef, list[float]]:
    """Per-request seconds of every cell, one value per round."""
    samples: dict[CellRef, list[float]] = {ref: [] for ref in batches}
    order = list(batches)
    started = time.monotonic()
    done = 0
    round_seconds = 0.0
    while done < min_rounds or (
        done < max_rounds and time.monotonic() - started + round_seconds <= budget_seconds
    ):
        began = time.monotonic()
        random.shuffle(order)
        for ref in order:
            samples[ref].append(per_request(workers[ref[0]], ref[1], batches[ref]))
        round_seconds = time.monotonic() - began
        done += 1
        print(f"  round {done}: {round_seconds:.1f} s", file=sys.stderr, flush=True)
    return samples
