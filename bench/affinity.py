"""Which cores the bench's processes run on: measuring processes on one, the rest on the others.

On a machine with few cores the scheduler may place one worker on the core
its server runs on for that process's whole life, and another worker
elsewhere. A round trip then costs very different times in the two
processes, so a comparison of two workers (``AGAINST=``) would measure where
they were placed rather than their code. Pinning removes that: every
measuring process gets the same core, and every server the same others, for
the whole run. With a single usable core nothing is pinned.
"""

from __future__ import annotations

import os


def _split(cores: list[int]) -> tuple[str, set[int]] | None:
    if len(cores) < 2:
        return None
    return str(cores[0]), set(cores[1:])


# Taken once, before the coordinator narrows its own mask.
_PLAN = _split(sorted(os.sched_getaffinity(0)))


def become_coordinator() -> None:
    """Move this process off the measuring core; servers it starts later inherit that."""
    if _PLAN is not None:
        os.sched_setaffinity(0, _PLAN[1])


def on_measuring_core(command: list[str]) -> list[str]:
    """``command`` run on the measuring core, by util-linux's ``taskset``."""
    if _PLAN is None:
        return command
    return ["taskset", "--cpu-list", _PLAN[0], *command]


def describe() -> str:
    """One sentence for the report's method section."""
    if _PLAN is None:
        return "One usable core, so no process was pinned."
    others = ",".join(str(core) for core in sorted(_PLAN[1]))
    return (
        f"Measuring workers and the HTTP app server ran pinned to core {_PLAN[0]}; the servers, "
        f"wrk and the coordinator to core {others}, so every worker's round trips cross the "
        f"same cores."
    )
