"""A short run of the decoding fuzzer (``make fuzz`` runs it for ten minutes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_twenty_seconds_of_fuzzing_find_no_crash(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz" / "run.py"),
            "--seconds=20",
            f"--corpus={tmp_path / 'corpus'}",
            f"--artifacts={tmp_path / 'artifacts'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    summary = re.search(r"executions: (\d+), crashes: (\d+)", run.stdout)
    assert summary is not None, run.stdout[-2000:]
    executions, crashes = map(int, summary.groups())
    assert (run.returncode, crashes) == (0, 0), run.stdout[-4000:]
    assert executions > 1000
    # The corpus grew beyond its seeds: the inputs reached new code.
    assert len(list((tmp_path / "corpus").iterdir())) > len(list(tmp_path.glob("corpus/seed-*")))
