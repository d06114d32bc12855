"""Run the decoding fuzzer for a fixed time; print its executions and crashes.

    python fuzz/run.py --seconds 600

libFuzzer stops at the first crash and writes the input that caused it to
``fuzz/artifacts/crash-*``; the exit status is non-zero then. The corpus it
grows is kept in ``fuzz/corpus`` so that later runs start where this one
ended.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "fuzz_decoding.py"


def seed(corpus: Path) -> None:
    """Start an empty corpus from valid inputs, which the harness knows how to make."""
    subprocess.run([sys.executable, str(HARNESS), "--seeds", str(corpus)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="time box (default 600)")
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus")
    parser.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    args = parser.parse_args()
    args.corpus.mkdir(parents=True, exist_ok=True)
    if not any(args.corpus.iterdir()):
        seed(args.corpus)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    before = set(args.artifacts.glob("crash-*"))
    command = [
        sys.executable,
        str(HARNESS),
        f"-max_total_time={args.seconds}",
        f"-artifact_prefix={args.artifacts}/",
        # Inputs bigger than a browser's cookie reach no new code.
        "-max_len=8192",
        "-print_final_stats=1",
        f"-dict={HERE / 'decoding.dict'}",
        str(args.corpus),
    ]
    result = subprocess.run(
        command, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = result.stdout
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output)
    done = re.findall(r"Done (\d+) runs", output)
    executions = int((runs or done or ["0"])[-1])
    crashes = len(set(args.artifacts.glob("crash-*")) - before)
    if result.returncode != 0 and crashes == 0:
        # Killed, out of memory, or an error in the harness itself.
        crashes = 1
    if crashes:
        print(output[-4000:], file=sys.stderr)
    print(f"fuzz: {args.seconds} s, executions: {executions}, crashes: {crashes}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
