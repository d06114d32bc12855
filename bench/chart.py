"""The overhead table as a bar chart: ours next to each peer and the raw floor, per request kind."""

from __future__ import annotations

from pathlib import Path

from .analysis import Samples
from .stats import Figure, summarize
from .trips import Trips

KINDS = (("untouched", "untouched"), ("read", "read"), ("write", "read+write"))
PANELS = (
    (
        "Cookie sessions",
        [
            "ts:securecookie",
            "ts:encryptedcookie",
            "peer:webapp2_extras",
            "peer:flask",
            "peer:beaker-cookie",
        ],
        "raw:cookie",
    ),
    (
        "Redis sessions",
        ["ts:redis", "peer:beaker-redis", "peer:flask-session-redis"],
        "raw:redis",
    ),
)
LABELS = {
    "ts:securecookie": "tipsessions securecookie",
    "ts:encryptedcookie": "tipsessions encryptedcookie",
    "ts:redis": "tipsessions redis",
    "peer:webapp2_extras": "webapp2_extras",
    "peer:flask": "Flask",
    "peer:beaker-cookie": "Beaker cookie",
    "peer:beaker-redis": "Beaker ext:redis",
    "peer:flask-session-redis": "Flask-Session redis",
    "raw:cookie": "raw HMAC + JSON + base64",
    "raw:redis": "raw redis-py GET × round trips",
}


def _floor(
    samples: Samples, trips: dict[str, dict[str, Trips]], floor: str, kind: str, size: str
) -> Figure | None:
    if kind == "untouched":
        return None
    if floor == "raw:cookie":
        return summarize(samples.time(floor, kind, size))
    calls = trips["ts:redis"][kind].round_trips
    return summarize([calls * value for value in samples.time(floor, "get", size)])


def draw(samples: Samples, trips: dict[str, dict[str, Trips]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for row, size in enumerate(("small", "large")):
        for column, (title, variants, floor) in enumerate(PANELS):
            ax = axes[row][column]
            series = [*variants, floor]
            width = 0.8 / len(series)
            for index, name in enumerate(series):
                heights: list[float] = []
                errors: list[list[float]] = [[], []]
                for kind, _ in KINDS:
                    if name == floor:
                        value = _floor(samples, trips, floor, kind, size)
                    else:
                        value = summarize(samples.overhead(name, kind, size))
                    value = value or Figure(0.0, 0.0, 0.0)
                    heights.append(value.median)
                    errors[0].append(max(0.0, value.median - value.low))
                    errors[1].append(max(0.0, value.high - value.median))
                positions = [k + (index - (len(series) - 1) / 2) * width for k in range(len(KINDS))]
                ax.bar(
                    positions,
                    heights,
                    width,
                    yerr=errors,
                    capsize=2,
                    label=LABELS[name],
                    color="0.55" if name == floor else colors(index),
                    hatch="//" if name == floor else None,
                )
            ax.set_xticks(range(len(KINDS)), [label for _, label in KINDS])
            ax.set_title(f"{title}, {size} payload")
            ax.set_ylabel("µs per request over the bare framework")
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.legend(fontsize=8, loc="upper left")
    figure.suptitle("tipsessions and its peers: added time per request (median, IQR bars)")
    figure.savefig(path, dpi=110)
    plt.close(figure)
