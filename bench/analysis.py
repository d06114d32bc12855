"""From per-round samples to the figures the report shows: times, overheads and paired ratios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .apps import VARIANTS
from .measure import CellRef
from .stats import Figure, minus, ratio, summarize

MICRO = 1e6


@dataclass(frozen=True)
class Samples:
    """Per-request seconds of every cell, one value per round, all rounds paired."""

    values: dict[CellRef, list[float]]

    @property
    def rounds(self) -> int:
        return len(next(iter(self.values.values())))

    def time(self, variant: str, kind: str, size: str, worker: str = "new") -> list[float]:
        """Microseconds per request (or per call, for the raw floors), per round."""
        return [value * MICRO for value in self.values[(worker, f"{variant}|{kind}|{size}")]]

    def bare(self, variant: str, kind: str, size: str) -> list[float]:
        framework = VARIANTS[variant].framework
        return self.time(f"bare:{framework}", kind, size)

    def overhead(self, variant: str, kind: str, size: str, worker: str = "new") -> list[float]:
        """Microseconds a variant adds to its bare framework on the same page, per round."""
        return minus(self.time(variant, kind, size, worker), self.bare(variant, kind, size))

    def has(self, variant: str, worker: str = "new") -> bool:
        return (worker, f"{variant}|read|small") in self.values


def median_ratio(values: Sequence[float], baseline: Sequence[float]) -> Figure:
    """The median of round-by-round ratios, with their IQR."""
    return summarize(ratio(values, baseline))


def figure(values: Sequence[float]) -> Figure:
    return summarize(values)
