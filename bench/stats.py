"""Medians and spreads of per-round figures, and the paired arithmetic between cells.

Every cell is measured once per round, so figure ``i`` of two cells were
taken moments apart under the same machine load. Differences and ratios
are therefore taken round by round, and only then summarised: that
cancels most of the drift a shared machine adds to both.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """The median of per-round values, with their interquartile range."""

    median: float
    low: float
    high: float

    def scaled(self, factor: float) -> Figure:
        return Figure(self.median * factor, self.low * factor, self.high * factor)

    @property
    def relative_spread(self) -> float:
        """The IQR as a share of the median (0 when the median is 0)."""
        return (self.high - self.low) / abs(self.median) if self.median else 0.0


def summarize(values: Sequence[float]) -> Figure:
    if len(values) == 1:
        return Figure(values[0], values[0], values[0])
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return Figure(median, low, high)


def minus(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Round-by-round differences."""
    return [a - b for a, b in zip(values, baseline, strict=True)]


def ratio(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Round-by-round ratios (a round whose baseline is not positive is left out)."""
    return [a / b for a, b in zip(values, baseline, strict=True) if b > 0]
