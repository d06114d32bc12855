"""Another revision's tipsessions package, in a temporary folder, for side-by-side rows."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def describe(repository: Path, revision: str) -> str:
    """``abc1234 (main~3)``: the commit a revision names, as the report shows it."""
    commit = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return commit if commit == revision else f"{commit} ({revision})"


@contextmanager
def checkout(repository: Path, revision: str) -> Iterator[Path]:
    """A folder holding ``revision``'s ``tipsessions/`` and nothing else, removed afterwards.

    Only the package is taken: the bench itself always runs from this
    checkout, so both revisions are measured by the same harness.
    """
    with tempfile.TemporaryDirectory(prefix="tipsessions-bench-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(repository), "archive", "--format=tar", revision, "tipsessions"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)
