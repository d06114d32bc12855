"""``python -m bench [--quick] [--against REV]``: run everything and write bench/RESULTS.md.

``make bench`` runs this in about 9 minutes, ``make bench QUICK=1`` in under 2.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from . import affinity, against, chart, http, measure, servers, targets, trips
from .analysis import Samples
from .apps import Context
from .report import Run, machine_facts, overhead_table, render, targets_table

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
RESULTS = HERE / "RESULTS.md"
CHART = HERE / "overhead.png"


@dataclass(frozen=True)
class Plan:
    """How long each part runs; the whole must fit in 10 minutes (2 with --quick)."""

    batch_seconds: float
    rounds_budget_seconds: float
    min_rounds: int
    http_seconds: float
    http_rounds: int
    profile_requests: int


FULL = Plan(0.04, 330, 15, 10, 3, 3000)
QUICK = Plan(0.015, 40, 5, 2, 2, 500)


def _command(args: argparse.Namespace) -> str:
    command = "make bench"
    if args.quick:
        command += " QUICK=1"
    if args.against:
        command += f" AGAINST={args.against}"
    return command


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (under 2 min)")
    parser.add_argument("--against", metavar="REV", help="also measure REV's tipsessions rows")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="tipsessions-bench-"))
    token = secrets.token_hex(4)

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", file=sys.stderr, flush=True)

    affinity.become_coordinator()
    with ExitStack() as stack:
        step(f"starting memcached, redis-server and the Datastore emulator (logs in {log_dir})")
        addresses = stack.enter_context(servers.running(log_dir))

        def context(name: str) -> Context:
            folder = log_dir / f"files-{name}"
            folder.mkdir()
            return Context(addresses.memcached, addresses.redis_url, str(folder), f"{name}-{token}")

        workers = {"new": measure.Worker("new", context("new"), CHECKOUT)}

        def close_workers() -> None:
            for worker in workers.values():
                worker.close()

        stack.callback(close_workers)
        against_label = None
        if args.against:
            against_label = against.describe(CHECKOUT, args.against)
            root = stack.enter_context(against.checkout(CHECKOUT, args.against))
            workers["old"] = measure.Worker(
                "old", context("old"), CHECKOUT, group="tipsessions", tipsessions_root=root
            )
        cells = [(name, cell) for name, worker in workers.items() for cell in worker.cells]
        step(f"warming up and sizing {len(cells)} cells")
        batches = measure.calibrate(workers, cells, plan.batch_seconds)
        step(f"interleaved rounds for {plan.rounds_budget_seconds:g} s")
        samples = Samples(
            measure.rounds(
                workers,
                batches,
                budget_seconds=plan.rounds_budget_seconds,
                min_rounds=plan.min_rounds,
                max_rounds=1000,
            )
        )
        step("counting round trips at the servers")
        counted = trips.count(workers["new"], addresses)
        step("HTTP: gunicorn and wrk")
        http_rows = http.measure(
            workers["new"], CHECKOUT, log_dir, plan.http_seconds, plan.http_rounds
        )
        checked = [
            *targets.cookie_targets(samples),
            *targets.server_targets(samples, counted),
            targets.http_target(http_rows),
        ]
        to_profile = sorted({t.profile_cell for t in checked if not t.met and t.profile_cell})
        step(f"profiling {len(to_profile)} paths of missed targets")
        profiles = {
            # At most about ten batches' worth, so a slow backend's path stays quick.
            cell: workers["new"].call(
                op="profile",
                cell=cell,
                n=min(plan.profile_requests, 10 * batches[("new", cell)]),
            )
            for cell in to_profile
        }
    run = Run(
        command=_command(args),
        quick=args.quick,
        samples=samples,
        batch_seconds=plan.batch_seconds,
        trips=counted,
        http=http_rows,
        http_seconds=plan.http_seconds,
        targets=checked,
        profiles=profiles,
        against=against_label,
        elapsed_seconds=time.monotonic() - started,
    )
    chart.draw(samples, counted, CHART)
    RESULTS.write_text(render(run, machine_facts(), CHART.name), encoding="utf-8")
    print(overhead_table(run))
    print()
    print(targets_table(run))
    step(f"wrote {RESULTS.relative_to(CHECKOUT)} and {CHART.relative_to(CHECKOUT)}")


if __name__ == "__main__":
    main()
