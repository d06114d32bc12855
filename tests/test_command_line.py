"""``python -m tipsessions``: version, secrets, help where it is needed, config files.

The purge itself is tested in test_purge.py; this is the command line
around it, run as users run it, in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apps import SECRET
from tipsessions import __version__
from tipsessions.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TIPSESSIONS_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "tipsessions", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version() -> None:
    done = run("--version")
    assert (done.returncode, done.stdout) == (0, f"tipsessions {__version__}\n")


def test_keygen_prints_a_fresh_secret_the_configuration_accepts() -> None:
    first, second = run("keygen"), run("keygen")
    assert first.returncode == 0 and first.stderr == ""
    secret = first.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert second.stdout.strip() != secret
    assert load_settings({"tipsessions": {"secret_key": secret}}).secret_keys == (secret,)


#: A line only each command's own help has.
PURGE_HELP = "Delete the expired sessions of a file or datastore backend."
KEYGEN_HELP = "Print a fresh random secret"
TOP_HELP = "tipsessions' command line"


@pytest.mark.parametrize(
    ("args", "own_help", "message"),
    [
        (["purge", "--backend", "file"], PURGE_HELP, "--config is required"),
        (["purge", "--config", "x"], PURGE_HELP, "required: --backend"),
        (
            ["purge", "--backend", "file", "--config", "x", "--batch-size", "0"],
            PURGE_HELP,
            "positive",
        ),
        (["purge", "--backend", "file", "--config", "x", "--frob"], PURGE_HELP, "--frob"),
        (["keygen", "--frob"], KEYGEN_HELP, "unrecognized arguments: --frob"),
        ([], TOP_HELP, "COMMAND"),
        (["frob"], TOP_HELP, "invalid choice: 'frob'"),
    ],
)
def test_a_usage_error_prints_the_help_of_the_command_misused(
    args: list[str], own_help: str, message: str
) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert own_help in done.stderr
    for other in {PURGE_HELP, KEYGEN_HELP, TOP_HELP} - {own_help}:
        assert other not in done.stderr
    *_, last = done.stderr.strip().splitlines()
    command = (
        " ".join(["python -m tipsessions", *args[:1]])
        if own_help != TOP_HELP
        else "python -m tipsessions"
    )
    assert last.startswith(f"{command}: error: ")
    assert message in last


def test_config_can_be_the_path_of_a_python_file(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    settings = {"secret_key": SECRET, "file": {"path": str(folder)}}
    conf = tmp_path / "deploy" / "settings.py"
    conf.parent.mkdir()
    conf.write_text(f"config = {{'tipsessions': {settings!r}}}\nother = config\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    for spec, cwd in [
        (str(conf), elsewhere),
        (f"{conf}:other", elsewhere),
        ("deploy/settings.py", tmp_path),
    ]:
        done = run("purge", "--backend", "file", "--config", spec, cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("purged 0 expired sessions from the file backend")


@pytest.mark.parametrize(
    ("body", "spec", "message"),
    [
        (None, "missing.py", "no such file: 'missing.py'"),
        ("config = {}\n", "conf.py:nothing", "conf.py:nothing is not a configuration dict"),
        ("raise RuntimeError('no secret here')\n", "conf.py", "no secret here"),
    ],
)
def test_a_bad_config_file_is_a_config_error(
    tmp_path: Path, body: str | None, spec: str, message: str
) -> None:
    if body is not None:
        (tmp_path / "conf.py").write_text(body)
    done = run("purge", "--backend", "file", "--config", spec, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --config: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_missing_secret_error_points_to_keygen(tmp_path: Path) -> None:
    (tmp_path / "conf.py").write_text("config = {'tipsessions': {}}\n")
    done = run("purge", "--backend", "file", "--config", "conf.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "tipsessions.secret_key: is required" in done.stderr
    assert "python -m tipsessions keygen" in done.stderr
