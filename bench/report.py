"""The results as Markdown: overheads and floors, round trips, HTTP, targets and profiles."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import affinity
from .analysis import Samples, median_ratio
from .apps import BOUND, PEERS, TIPSESSIONS, VARIANTS
from .http import HttpRow
from .stats import Figure, summarize
from .targets import Target
from .trips import Trips

SIZES = ("small", "large")
KINDS = ("untouched", "read", "write")
KIND_LABELS = {"untouched": "untouched", "read": "read", "write": "read+write"}
PACKAGES = (
    "webapp2",
    "WebOb",
    "itsdangerous",
    "cryptography",
    "pymemcache",
    "redis",
    "google-cloud-datastore",
    "Flask",
    "Flask-Session",
    "Beaker",
    "gunicorn",
    "matplotlib",
)
# Cookie sessions are priced against the raw HMAC + JSON + base64 floor;
# server sessions against one raw GET per round trip they make.
COOKIE_FLOOR = (
    "ts:securecookie",
    "ts:securecookie+user",
    "ts:encryptedcookie",
    "peer:webapp2_extras",
    "peer:flask",
    "peer:beaker-cookie",
)
SERVER_FLOOR = {
    "ts:memcache": "raw:memcache",
    "ts:redis": "raw:redis",
    "ts:redis+user": "raw:redis",
    "peer:beaker-redis": "raw:redis",
    "peer:flask-session-redis": "raw:redis",
}


@dataclass(frozen=True)
class Run:
    """Everything one run measured, and how it was asked for."""

    command: str
    quick: bool
    samples: Samples
    batch_seconds: float
    trips: dict[str, dict[str, Trips]]
    http: list[HttpRow]
    http_seconds: float
    targets: list[Target]
    profiles: dict[str, dict[str, Any]]
    against: str | None
    elapsed_seconds: float


def number(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def spread(figure: Figure, unit: str = "") -> str:
    return f"{number(figure.median)}{unit} ({number(figure.low)}–{number(figure.high)})"


def times(figure: Figure) -> str:
    return f"{figure.median:.2f}× ({figure.low:.2f}–{figure.high:.2f})"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _floor(run: Run, variant: str, size: str) -> list[float] | None:
    """Per-round cost of the raw work a read+write of ``variant`` cannot avoid."""
    if variant in COOKIE_FLOOR:
        return run.samples.time("raw:cookie", "write", size)
    if variant in SERVER_FLOOR and variant in run.trips:
        calls = run.trips[variant]["write"].round_trips
        return [calls * value for value in run.samples.time(SERVER_FLOOR[variant], "get", size)]
    return None


def overhead_table(run: Run) -> str:
    """The one table: what each library adds per request, and the raw floors beside it."""
    samples = run.samples
    rows = []
    for variant in [*TIPSESSIONS, *BOUND, *PEERS]:
        for size in SIZES:
            cells = [VARIANTS[variant].label, size]
            cells += [spread(summarize(samples.overhead(variant, kind, size))) for kind in KINDS]
            floor = _floor(run, variant, size)
            added = samples.overhead(variant, "write", size)
            cells.append(times(median_ratio(added, floor)) if floor else "–")
            rows.append(cells)
    for size in SIZES:
        read = summarize(samples.time("raw:cookie", "read", size))
        write = summarize(samples.time("raw:cookie", "write", size))
        rows.append(
            ["raw floor: HMAC-SHA256 + JSON + base64", size, "–", spread(read), spread(write), "1×"]
        )
    for client, label in (
        ("raw:memcache", "raw floor: one pymemcache get"),
        ("raw:redis", "raw floor: one redis-py GET"),
    ):
        for size in SIZES:
            get = summarize(samples.time(client, "get", size))
            rows.append([label, size, "–", spread(get), "–", "–"])
    header = [
        "µs per request over the bare framework",
        "payload",
        "untouched",
        "read",
        "read+write",
    ]
    header.append("read+write ÷ raw floor")
    bare = []
    for key in ("bare:webapp2", "bare:flask"):
        figure = summarize(samples.time(key, "read", "small"))
        bare.append(f"{VARIANTS[key].label} {spread(figure, ' µs')}")
    note = (
        "Median (interquartile range) of per-round figures; raw floors are their own cost. "
        f"Bare frameworks per request: {'; '.join(bare)}."
    )
    return _table(header, rows) + "\n\n" + note


def trips_table(run: Run) -> str:
    rows = []
    for variant, pages in run.trips.items():
        load = pages["read"].round_trips
        save = pages["write"].round_trips - load
        commands = "; ".join(
            f"{KIND_LABELS[kind]}: "
            + (
                ", ".join(
                    f"{name} {count:g}" for name, count in sorted(pages[kind].commands.items())
                )
                or "none"
            )
            for kind in ("read", "write")
        )
        untouched = pages["untouched"].round_trips
        rows.append([VARIANTS[variant].label, f"{untouched:g}", f"{load:g}", f"{save:g}", commands])
    header = ["backend", "untouched", "load", "save", "commands per request"]
    return _table(header, rows)


def http_table(run: Run) -> str:
    bare = next(row for row in run.http if row.key == "bare:webapp2")
    rows = []
    for row in run.http:
        share = summarize([a / b for a, b in zip(row.rates, bare.rates, strict=True)])
        rows.append(
            [row.label, spread(row.requests_per_second), f"{share.median:.0%}", spread(row.p99_ms)]
        )
    return _table(["gunicorn, 1 sync worker, GET /write", "requests/s", "of bare", "p99 ms"], rows)


def targets_table(run: Run) -> str:
    rows = []
    for target in run.targets:
        shown = times(target.figure) if "round trips" not in target.name else target.worst
        rows.append(
            [
                target.name,
                shown,
                "**met**" if target.met else "**missed**",
                target.worst if "round trips" not in target.name else "",
            ]
        )
    return _table(["target", "this run", "result", "decided by"], rows)


def profiles_section(run: Run) -> str:
    if not run.profiles:
        return "Every target is met; nothing was profiled."
    parts = [
        "cProfile over the missed targets' paths (times per request, inflated by the profiler; "
        "read them as shares, not as costs):"
    ]
    for cell, profile in run.profiles.items():
        variant, kind, size = cell.split("|")
        title = f"{VARIANTS[variant].label}, {KIND_LABELS[kind]}, {size}"
        parts.append(f"**{title}**: {profile['calls']:.0f} Python calls per request.")
        own = [
            [
                f"`{row['function']}`",
                f"{row['calls']:g}",
                f"{row['own'] * 1e6:.1f}",
                f"{row['cumulative'] * 1e6:.1f}",
            ]
            for row in profile["by_own"][:10]
        ]
        parts.append(
            "By own time:\n\n" + _table(["function", "calls", "own µs", "cumulative µs"], own)
        )
        cumulative = [
            [f"`{row['function']}`", f"{row['calls']:g}", f"{row['cumulative'] * 1e6:.1f}"]
            for row in profile["by_cumulative"]
            if not row["function"].startswith(("webapp2.py", "webob/", "bench/"))
        ][:10]
        parts.append(
            "By cumulative time (outside webapp2/WebOb):\n\n"
            + _table(["function", "calls", "cumulative µs"], cumulative)
        )
    return "\n\n".join(parts)


def against_table(run: Run) -> str:
    samples = run.samples
    rows = []
    for variant in TIPSESSIONS:
        for size in SIZES:
            for kind in KINDS:
                # Untouched pages add next to nothing: compare whole requests there.
                measure = samples.time if kind == "untouched" else samples.overhead
                new = measure(variant, kind, size, "new")
                old = measure(variant, kind, size, "old")
                change = median_ratio(new, old)
                flag = "slower" if change.median > 1.05 else ""
                what = "request" if kind == "untouched" else "overhead"
                rows.append(
                    [
                        VARIANTS[variant].label,
                        KIND_LABELS[kind],
                        size,
                        what,
                        spread(summarize(old)),
                        spread(summarize(new)),
                        times(change),
                        flag,
                    ]
                )
    header = [
        "row",
        "page",
        "payload",
        "µs of",
        f"{run.against}",
        "this checkout",
        "new / old",
        "> 5 %",
    ]
    return _table(header, rows)


def machine_facts() -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("OS", platform.platform()),
        ("tipsessions", _revision()),
    ]
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    facts.append(("packages", ", ".join(versions)))
    facts.append(("servers", _server_versions()))
    return facts


def _revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    commit = git("log", "-1", "--format=%h %s")
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "tipsessions") else ""
    return (commit or "unknown") + dirty


def _server_versions() -> str:
    versions = []
    for command in (["memcached", "-V"], ["redis-server", "--version"], ["wrk", "-v"]):
        try:
            output = subprocess.run(command, capture_output=True, text=True, timeout=10)
            text = (output.stdout or output.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            text = f"{command[0]} (not found)"
        versions.append(" ".join(text.split()[:3]))
    return "; ".join(versions)


def _notes(run: Run) -> list[str]:
    spreads = [
        summarize(values).relative_spread
        for (worker, cell), values in run.samples.values.items()
        if worker == "new" and cell.split("|")[0] in TIPSESSIONS
    ]
    typical = statistics.median(spreads)
    notes = [
        f"Typical interquartile range of a cell's per-request time: {typical:.0%} of its median.",
    ]
    if typical > 0.10:
        notes.append(
            "That spread is wide: the machine is shared with other jobs, so single figures "
            "drift; the paired ratios (taken within each round) are steadier than the raw times."
        )
    else:
        notes.append(
            "The machine is shared with other jobs; interleaving and pairing keep that drift "
            "out of the ratios."
        )
    noisy = [
        label
        for client, label in (("raw:memcache", "pymemcache get"), ("raw:redis", "redis-py GET"))
        if max(summarize(run.samples.time(client, "get", size)).relative_spread for size in SIZES)
        > 0.3
    ]
    if noisy:
        notes.append(
            f"The raw client floors ({', '.join(noisy)}) spread widely: a loopback round trip "
            "depends on whether the server's thread is awake on the other core, which on a "
            "shared 2-core machine varies from batch to batch. Ratios against them are rough."
        )
    if run.quick:
        notes.append(
            "QUICK=1: fewer, shorter rounds; use a full `make bench` for published figures."
        )
    return notes


def render(run: Run, facts: list[tuple[str, str]], chart_name: str) -> str:
    samples = run.samples
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    met = sum(target.met for target in run.targets)
    sections = [
        "# tipsessions benchmark results",
        f"Written by `{run.command}` on {started}, in {run.elapsed_seconds / 60:.1f} minutes.",
        "\n".join(f"- **{name}:** {value}" for name, value in facts),
        "## Overhead per request",
        f"![Overhead per request]({chart_name})",
        overhead_table(run),
        f"## Targets: {met} of {len(run.targets)} met",
        targets_table(run),
        "## Round trips per request, counted at the server",
        trips_table(run),
        "memcached: its `stats` counters (a multi-key get counts once per key). redis: "
        "`total_reads_processed` for round trips; the command breakdown from `commandstats` also "
        "counts the commands a Lua script runs. Datastore emulator: it keeps no request "
        "counters, so its RPCs are counted at the client's API boundary (each call one RPC).",
        "## Over HTTP",
        http_table(run),
        f"wrk -t1 -c2 --latency for {run.http_seconds:g} s per run on loopback, "
        f"{len(run.http[0].rates)} interleaved rounds; session rows send a seeded small session.",
        "## Where the time goes",
        profiles_section(run),
    ]
    if run.against:
        sections += [
            f"## Against {run.against}",
            "Both revisions' tipsessions rows in the same interleaved rounds (each imported in "
            "its own worker process). Ratios are new / old of the overhead over bare webapp2 (of "
            "the whole request for untouched pages); a row more than 5 % slower is flagged.",
            against_table(run),
        ]
    sections += [
        "## Method",
        f"Every application serves the same pages (untouched, read one value, read and change one "
        f"value) and is called as a WSGI app in-process, with the cookie its seed page set. Each "
        f"cell (a page of a variant with one payload) runs batches of about "
        f"{run.batch_seconds * 1e3:.0f} ms; {samples.rounds} rounds, each running every cell once "
        f"in a new random order. Overheads subtract the bare framework's time on the same page in "
        f"the same round; ratios are taken round by round; tables show the median and the "
        f"interquartile range across rounds. Payloads: small `{{'user_id': 42, 'name': 'alice', "
        f"'cart': [1, 2, 3]}}`, large about 2 KB of JSON. " + affinity.describe(),
        "## Notes",
        "\n".join(f"- {note}" for note in _notes(run)),
    ]
    return "\n\n".join(sections) + "\n"
