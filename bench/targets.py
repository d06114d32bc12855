"""The speed targets, each checked against this run's own figures.

Every ratio is the median of round-by-round ratios, so both sides were
measured moments apart. Where a target covers several rows (both
payloads, every backend, read and write), the worst row decides.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .analysis import Samples, median_ratio
from .apps import TIPSESSIONS_BACKENDS
from .http import HttpRow
from .stats import Figure, minus, ratio, summarize
from .trips import Trips

SIZES = ("small", "large")
PAGES = {"read": "read", "write": "read+write"}


@dataclass(frozen=True)
class Target:
    name: str
    comparison: str  # "<=", "<" or ">="
    limit: float
    figure: Figure
    worst: str  # which row decided
    profile_cell: str | None = None  # what to profile when the target is missed

    @property
    def met(self) -> bool:
        compare: Callable[[float, float], bool] = {
            "<=": operator.le,
            "<": operator.lt,
            ">=": operator.ge,
        }[self.comparison]
        return compare(self.figure.median, self.limit)


def _worst(
    name: str,
    comparison: str,
    limit: float,
    candidates: Mapping[str, tuple[Figure, str | None]],
) -> Target:
    """The target as decided by its worst row."""
    pick = min if comparison == ">=" else max
    row = pick(candidates, key=lambda label: candidates[label][0].median)
    figure, cell = candidates[row]
    return Target(name, comparison, limit, figure, row, cell)


def cookie_targets(samples: Samples) -> list[Target]:
    targets = []
    untouched = {
        f"{backend}, {size}": (
            median_ratio(
                samples.time(f"ts:{backend}", "untouched", size),
                samples.time("bare:webapp2", "untouched", size),
            ),
            f"ts:{backend}|untouched|{size}",
        )
        for backend in TIPSESSIONS_BACKENDS
        for size in SIZES
    }
    targets.append(_worst("untouched ≤ 1.02 × bare webapp2 (time)", "<=", 1.02, untouched))
    for size, limit in (("small", 3.0), ("large", 1.5)):
        floor = median_ratio(
            samples.overhead("ts:securecookie", "write", size),
            samples.time("raw:cookie", "write", size),
        )
        targets.append(
            Target(
                f"securecookie read+write ≤ {limit:g} × raw floor ({size})",
                "<=",
                limit,
                floor,
                f"securecookie read+write, {size}",
                f"ts:securecookie|write|{size}",
            )
        )
    for peer, label in (
        ("peer:webapp2_extras", "webapp2_extras"),
        ("peer:flask", "Flask"),
        ("peer:beaker-cookie", "Beaker cookie"),
    ):
        rows = {
            f"{PAGES[kind]}, {size}": (
                median_ratio(
                    samples.overhead("ts:securecookie", kind, size),
                    samples.overhead(peer, kind, size),
                ),
                f"ts:securecookie|{kind}|{size}",
            )
            for kind in PAGES
            for size in SIZES
        }
        targets.append(_worst(f"securecookie below {label} (overhead ratio)", "<", 1.0, rows))
    read_share = {
        size: (
            median_ratio(
                samples.overhead("ts:securecookie", "read", size),
                samples.overhead("ts:securecookie", "write", size),
            ),
            f"ts:securecookie|read|{size}",
        )
        for size in SIZES
    }
    targets.append(_worst("securecookie read ≤ ½ × read+write", "<=", 0.5, read_share))
    encrypted = {
        f"{PAGES[kind]}, {size}": (
            median_ratio(
                samples.overhead("ts:encryptedcookie", kind, size),
                samples.overhead("ts:securecookie", kind, size),
            ),
            f"ts:encryptedcookie|{kind}|{size}",
        )
        for kind in PAGES
        for size in SIZES
    }
    targets.append(_worst("encryptedcookie ≤ 1.3 × securecookie", "<=", 1.3, encrypted))
    return targets


def server_targets(samples: Samples, trips: dict[str, dict[str, Trips]]) -> list[Target]:
    targets = []
    for backend, client in (("memcache", "raw:memcache"), ("redis", "raw:redis")):
        counted = trips[f"ts:{backend}"]
        untouched = counted["untouched"].round_trips
        load = counted["read"].round_trips
        save = counted["write"].round_trips - load
        worst_gap = max(abs(untouched - 0), abs(load - 1), abs(save - 1))
        targets.append(
            Target(
                f"{backend}: 0 / 1 / 1 round trips (untouched / load / save)",
                "<=",
                0.0,
                Figure(worst_gap, worst_gap, worst_gap),
                f"{untouched:g} / {load:g} / {save:g}",
            )
        )
        # The backend's own overhead is what it adds over the memory backend
        # (the same session work, with storage in a dict); each round trip is
        # priced at one raw GET of the same payload.
        rows = {}
        for kind, calls in (("read", load), ("write", load + save)):
            for size in SIZES:
                own = minus(
                    samples.time(f"ts:{backend}", kind, size),
                    samples.time("ts:memory", kind, size),
                )
                raw = [calls * value for value in samples.time(client, "get", size)]
                rows[f"{PAGES[kind]}, {size}"] = (
                    median_ratio(own, raw),
                    f"ts:{backend}|{kind}|{size}",
                )
        name = f"{backend}: own overhead ≤ 1.5 × its raw client calls"
        targets.append(_worst(name, "<=", 1.5, rows))
    return targets


def http_target(rows: list[HttpRow]) -> Target:
    rates = {row.key: row.rates for row in rows}
    share = summarize(ratio(rates["ts:securecookie"], rates["bare:webapp2"]))
    return Target(
        "HTTP securecookie write ≥ 85 % of bare webapp2 requests/s",
        ">=",
        0.85,
        share,
        "gunicorn, 1 sync worker",
        "ts:securecookie|write|small",
    )
