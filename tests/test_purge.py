"""``python -m tipsessions purge``: exactly the expired sessions go, and only once."""

from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from google.cloud import datastore

from tests.apps import SECRET
from tipsessions import ConfigError
from tipsessions.backends import ServerBackend
from tipsessions.commands import ProgressBar, purge
from tipsessions.config import load_settings
from tipsessions.record import Record
from tipsessions.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"^purged (\d+) expired sessions? from the (\w+) backend in \d+\.\ds$")
KIND = "PurgeSession"


def app_config(**settings: Any) -> dict[str, Any]:
    return {"tipsessions": {"secret_key": SECRET, **settings}}


def server_backend(config: dict[str, Any], name: str) -> ServerBackend:
    backend = Runtime(load_settings(config)).backend(name)
    assert isinstance(backend, ServerBackend)
    return backend


def fill(backend: ServerBackend, live: int, expired: int) -> tuple[set[str], set[str]]:
    """Store ``live`` sessions and ``expired`` ones; expire the latter right away."""
    keys = [secrets.token_hex(32) for _ in range(live + expired)]
    for key in keys:
        backend.put(key, Record(data={"k": key}, created=int(time.time())), 3600)
    return set(keys[:live]), set(keys[live:])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def file_config(folder: Path) -> dict[str, Any]:
    return app_config(file={"path": str(folder)})


def expire_files(folder: Path, keys: set[str]) -> None:
    past = time.time() - 10
    for key in keys:
        os.utime(folder / f"tip_{key}.sess", (past, past))


def session_files(folder: Path) -> set[str]:
    return {p.name[4:-5] for p in folder.glob("tip_*.sess")}


def test_file_purge_removes_exactly_the_expired(folder: Path, file_config: dict[str, Any]) -> None:
    live, expired = fill(server_backend(file_config, "file"), live=4, expired=7)
    expire_files(folder, expired)
    seen: list[tuple[int, int | None]] = []

    assert purge(file_config, "file", batch_size=3, progress=lambda *p: seen.append(p)) == 7
    assert session_files(folder) == live
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    # Idempotent: nothing left to do.
    assert purge(file_config, "file") == 0
    assert session_files(folder) == live


def test_file_purge_removes_temporary_files_whose_writer_is_gone(folder: Path) -> None:
    config = app_config(file={"path": str(folder), "lock_timeout": 0.2})
    fill(server_backend(config, "file"), live=1, expired=0)
    orphans = [folder / ".tip-tmp" / "w-crashed", folder / ".tip-tmp-from-0.1.0"]
    for orphan in orphans:
        orphan.write_text("{}")
    time.sleep(0.3)  # older than the lock timeout now
    fresh = folder / ".tip-tmp" / "w-writing"
    fresh.write_text("{}")

    assert purge(config, "file") == 0
    assert [orphan.exists() for orphan in orphans] == [False, False]
    assert fresh.exists()


def test_file_purge_of_a_folder_not_created_yet_purges_nothing(
    file_config: dict[str, Any],
) -> None:
    assert purge(file_config, "file") == 0


@pytest.fixture
def datastore_config(datastore_emulator: str, unique_namespace: str) -> dict[str, Any]:
    # Generous: a fresh emulator can take seconds to answer its first request.
    return app_config(datastore={"namespace": unique_namespace, "kind": KIND, "timeout": 30.0})


def expire_entities(raw: Any, keys: set[str]) -> None:
    entities = raw.get_multi([raw.key(KIND, key) for key in keys])
    for entity in entities:
        entity["expires"] = datetime.now(timezone.utc) - timedelta(seconds=10)
    raw.put_multi(entities)


def test_datastore_purge_removes_exactly_the_expired(
    datastore_config: dict[str, Any], unique_namespace: str
) -> None:
    raw = datastore.Client(namespace=unique_namespace)
    live, expired = fill(server_backend(datastore_config, "datastore"), live=3, expired=7)
    expire_entities(raw, expired)
    seen: list[tuple[int, int | None]] = []

    assert (
        purge(datastore_config, "datastore", batch_size=3, progress=lambda *p: seen.append(p)) == 7
    )
    assert {entity.key.name for entity in raw.query(kind=KIND).fetch()} == live
    assert seen == [(0, None), (3, None), (6, None), (7, None)]
    assert purge(datastore_config, "datastore") == 0


def test_purge_refuses_bad_input(file_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="memory backend cannot be purged"):
        purge(file_config, "memory")
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        purge(file_config, "nope")
    with pytest.raises(ConfigError, match="batch_size"):
        purge(file_config, "file", batch_size=0)
    with pytest.raises(ConfigError, match="secret_key"):
        purge({"tipsessions": {}}, "file")


def test_the_progress_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "purging file", width=10)
    bar(0, 4)
    bar(2, 4)
    bar(4, 4)
    bar.close()
    assert stream.getvalue() == (
        "\rpurging file [----------] 0/4"
        "\rpurging file [#####-----] 2/4"
        "\rpurging file [##########] 4/4\n"
    )
    stream = io.StringIO()
    unknown = ProgressBar(stream, "purging datastore")
    unknown(500, None)
    assert stream.getvalue() == "\rpurging datastore: 500 deleted"


def write_config_module(directory: Path, body: str) -> str:
    name = f"purge_config_{secrets.token_hex(4)}"
    (directory / f"{name}.py").write_text(body)
    return name


def run(cwd: Path, *args: str, stderr: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    # python -m puts the working directory first on sys.path, so the
    # configuration module is found there, as it is in an application.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TIPSESSIONS_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "tipsessions", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=120,
    )


def test_command_line_purges_and_prints_a_summary(tmp_path: Path, folder: Path) -> None:
    config = app_config(file={"path": str(folder)})
    live, expired = fill(server_backend(config, "file"), live=2, expired=3)
    expire_files(folder, expired)
    module = write_config_module(tmp_path, f"config = {config!r}\nother = config\n")

    done = run(tmp_path, "purge", "--backend", "file", "--config", module)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar
    match = SUMMARY.match(done.stdout.strip())
    assert match is not None, done.stdout
    assert match.groups() == ("3", "file")
    assert session_files(folder) == live

    again = run(tmp_path, "purge", "--backend", "file", "--config", f"{module}:other")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("purged 0 expired sessions from the file backend in ")


def test_command_line_draws_a_progress_bar_on_a_terminal(tmp_path: Path, folder: Path) -> None:
    config = app_config(file={"path": str(folder)})
    _, expired = fill(server_backend(config, "file"), live=1, expired=2)
    expire_files(folder, expired)
    module = write_config_module(tmp_path, f"config = {config!r}\n")
    leader, follower = os.openpty()
    try:
        done = run(tmp_path, "purge", "--backend", "file", "--config", module, stderr=follower)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"\rpurging file [" in drawn
    assert b"] 2/2" in drawn
    assert SUMMARY.match(done.stdout.strip())


def test_command_line_with_datastore(
    tmp_path: Path, datastore_config: dict[str, Any], unique_namespace: str
) -> None:
    raw = datastore.Client(namespace=unique_namespace)
    _, expired = fill(server_backend(datastore_config, "datastore"), live=1, expired=2)
    expire_entities(raw, expired)
    module = write_config_module(tmp_path, f"config = {datastore_config!r}\n")
    done = run(tmp_path, "purge", "--backend", "datastore", "--config", module)
    assert done.returncode == 0, done.stderr
    match = SUMMARY.match(done.stdout.strip())
    assert match is not None and match.groups() == ("2", "datastore")


@pytest.mark.parametrize(
    ("config_body", "args", "message"),
    [
        ("config = {'tipsessions': {}}", [], "tipsessions.secret_key: is required"),
        (
            f"config = {{'tipsessions': {{'secret_key': {SECRET!r}, 'flie': {{}}}}}}",
            [],
            "tipsessions.flie: unknown setting",
        ),
        (f"config = {app_config()!r}", ["--backend", "memory"], "cannot be purged"),
        (f"config = {app_config()!r}", ["--backend", "nosuch"], "unknown backend 'nosuch'"),
        ("config = 42", [], "is not a configuration dict"),
        ("raise RuntimeError('no secret in the environment')", [], "no secret in the environment"),
    ],
)
def test_command_line_config_errors_exit_2_with_the_message(
    tmp_path: Path, config_body: str, args: list[str], message: str
) -> None:
    module = write_config_module(tmp_path, config_body)
    args = args or ["--backend", "file"]
    done = run(tmp_path, "purge", "--config", module, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["purge", "--backend", "file"], "--config is required"),
        (["purge", "--config", "x"], "--backend"),
        (["purge", "--backend", "file", "--config", "x", "--batch-size", "0"], "positive"),
        (["purge", "--backend", "file", "--config", "no_such_module_here"], "cannot import"),
        ([], "command"),
    ],
)
def test_command_line_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_command_line_unavailable_backend_exits_1(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    module = write_config_module(
        tmp_path, f"config = {app_config(file={'path': str(not_a_folder)})!r}\n"
    )
    done = run(tmp_path, "purge", "--backend", "file", "--config", module)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: file backend at {not_a_folder} is unavailable")
