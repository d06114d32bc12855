"""What only the ``file`` backend must do: permissions, path safety, atomic files, locks."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apps import Browser, build_backend, stored_key
from tests.fault_figures import Figures
from tests.fault_figures import record as record_figures
from tipsessions import BackendUnavailable, SessionConflict
from tipsessions.backends import WriteResult
from tipsessions.backends.file import FileBackend
from tipsessions.record import ChangeSet, Record

TTL = 3600


def make_backend(**file_options: Any) -> FileBackend:
    backend = build_backend("file", **file_options)
    assert isinstance(backend, FileBackend)
    return backend


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def backend(folder: Path) -> FileBackend:
    return make_backend(path=str(folder))


def new_key() -> str:
    return secrets.token_hex(32)


#: A fixed creation time, so that records built at different moments compare equal.
CREATED = int(time.time())


def record(**data: Any) -> Record:
    return Record(data=data, created=CREATED)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folder_is_created_private_and_files_are_0600(backend: FileBackend, folder: Path) -> None:
    assert not folder.exists()
    key = new_key()
    backend.put(key, record(a=1), TTL)
    assert mode(folder) == 0o700
    assert [p.name for p in folder.glob("tip_*")] == [f"tip_{key}.sess"]
    assert mode(folder / ".tip-tmp") == 0o700
    assert all(mode(p) == 0o600 for p in folder.iterdir() if p.is_file())
    assert backend.address == str(folder)


def test_default_folder_is_sessions_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = make_backend()
    monkeypatch.chdir("/")  # resolved when built, not at each call
    backend.put(new_key(), record(a=1), TTL)
    assert backend.address == str(tmp_path / "sessions")
    assert len(list((tmp_path / "sessions").glob("tip_*.sess"))) == 1


def test_filename_template(folder: Path) -> None:
    backend = make_backend(path=str(folder), filename_template="s-%s.json")
    key = new_key()
    backend.put(key, record(a=1), TTL)
    assert (folder / f"s-{key}.json").is_file()
    assert backend.read(key)[0] == record(a=1)


HOSTILE_KEYS = [
    "../" + "a" * 61,
    "a" * 62 + "/x",
    "/etc/passwd",
    "..",
    "",
    "a" * 64 + "\n",  # re.match("...$") would accept this one
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "%s" + "a" * 62,
    "a" * 63 + "\x00",
    "g" * 64,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_never_reach_a_path(backend: FileBackend, tmp_path: Path, key: str) -> None:
    before = sorted(tmp_path.rglob("*"))
    calls = [
        lambda: backend.read(key),
        lambda: backend.put(key, record(a=1), TTL),
        lambda: backend.update(key, ChangeSet(updates={"a": 2}), TTL, None),
        lambda: backend.delete(key),
        lambda: backend.touch(key, TTL),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="64 lowercase hex"):
            call()
    assert sorted(tmp_path.rglob("*")) == before


def test_writes_leave_no_temporary_files(backend: FileBackend, folder: Path) -> None:
    keys = [new_key() for _ in range(5)]
    for key in keys:
        backend.put(key, record(n=0), TTL)
        for n in range(1, 4):
            backend.update(key, ChangeSet(updates={"n": n}), TTL, None)
        backend.touch(key, TTL)
    backend.delete(keys[0])
    names = {p.name for p in folder.iterdir()}
    assert not list((folder / ".tip-tmp").iterdir())
    assert {n for n in names if n.startswith("tip_")} == {f"tip_{k}.sess" for k in keys[1:]}
    assert backend.read(keys[1])[0] == record(n=3)


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_file(
    backend: FileBackend, folder: Path
) -> None:
    key = new_key()
    backend.put(key, record(a=1), TTL)
    # A directory where the file should go makes the final rename fail.
    blocked = new_key()
    (folder / f"tip_{blocked}.sess").mkdir()
    with pytest.raises(BackendUnavailable):
        backend.put(blocked, record(a=1), TTL)
    assert not list((folder / ".tip-tmp").iterdir())
    assert backend.read(key)[0] == record(a=1)


def test_expiry_is_the_mtime_and_expired_files_read_as_missing(
    backend: FileBackend, folder: Path
) -> None:
    key = new_key()
    backend.put(key, record(a=1), TTL)
    path = folder / f"tip_{key}.sess"
    assert path.stat().st_mtime == pytest.approx(time.time() + TTL, abs=5)
    past = time.time() - 1
    os.utime(path, (past, past))
    assert backend.read(key) == (None, None)
    backend.touch(key, TTL)  # never revives an expired session
    assert backend.read(key) == (None, None)
    assert backend.update(key, ChangeSet(updates={"a": 2}), TTL, None) is WriteResult.GONE
    assert path.stat().st_mtime == past


def test_touch_changes_only_the_mtime(backend: FileBackend, folder: Path) -> None:
    key = new_key()
    backend.put(key, record(a=1), 10)
    path = folder / f"tip_{key}.sess"
    inode, content = path.stat().st_ino, path.read_bytes()
    backend.touch(key, TTL)
    assert path.stat().st_ino == inode
    assert path.read_bytes() == content
    assert path.stat().st_mtime == pytest.approx(time.time() + TTL, abs=5)


def test_touch_never_extends_a_tombstone(backend: FileBackend, folder: Path) -> None:
    key = new_key()
    backend.put(key, Record(tombstone=True), 30)
    path = folder / f"tip_{key}.sess"
    expires = path.stat().st_mtime
    backend.touch(key, TTL)
    assert path.stat().st_mtime == expires


def test_a_file_that_does_not_decode_reads_as_missing_and_is_logged_without_content(
    backend: FileBackend, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    backend.put(key, record(a=1), TTL)
    path = folder / f"tip_{key}.sess"
    expires = path.stat().st_mtime
    path.write_bytes(b"\x80\x04secret-pickle-payload")
    os.utime(path, (expires, expires))
    with caplog.at_level(logging.WARNING, logger="tipsessions.security"):
        assert backend.read(key) == (None, None)
    assert [r.name for r in caplog.records] == ["tipsessions.security"]
    assert "secret-pickle-payload" not in caplog.text


def test_processes_updating_one_session_lose_nothing(backend: FileBackend, folder: Path) -> None:
    key = new_key()
    backend.put(key, record(start=True), TTL)
    script = textwrap.dedent(
        f"""
        import sys, threading
        from tests.test_file import make_backend
        from tipsessions.record import ChangeSet
        backend = make_backend(path={str(folder)!r})
        def writer(name):
            for n in range(20):
                backend.update({key!r}, ChangeSet(updates={{f"{{name}}-{{n}}": n}}), 3600, None)
        names = [f"{{sys.argv[1]}}-{{t}}" for t in range(2)]
        threads = [threading.Thread(target=writer, args=(name,)) for name in names]
        [t.start() for t in threads]
        [t.join() for t in threads]
        """
    )
    root = Path(__file__).resolve().parent.parent
    workers = [subprocess.Popen([sys.executable, "-c", script, str(p)], cwd=root) for p in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]
    stored = backend.read(key)[0]
    assert stored is not None
    assert len(stored.data) == 1 + 4 * 2 * 20


def test_an_unusable_folder_is_backend_unavailable_naming_it(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    for path in (not_a_folder, not_a_folder / "sessions"):
        backend = make_backend(path=str(path))
        with pytest.raises(BackendUnavailable) as caught:
            backend.put(new_key(), record(a=1), TTL)
        assert caught.value.backend == "file"
        assert caught.value.address == str(path)
        assert str(path) in str(caught.value)


def test_through_an_app_the_file_name_is_a_hash_not_the_session_id(folder: Path) -> None:
    browser = Browser(default_backend="file", file={"path": str(folder)})
    browser(lambda h: h.session.update(user="ada"))
    files = list(folder.glob("tip_*.sess"))
    assert len(files) == 1
    session_id = browser.cookie()
    assert session_id is not None
    raw_id = session_id.split(".")[0]
    assert raw_id not in files[0].name
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}
    browser(lambda h: h.session.invalidate())
    assert not list(folder.glob("tip_*.sess"))


def test_a_lock_held_past_the_timeout_is_a_conflict_and_writes_nothing(folder: Path) -> None:
    backend = make_backend(path=str(folder), lock_timeout=0.3)
    key = new_key()
    backend.put(key, record(a=1), TTL)
    # Another process stuck while holding the session's lock stripe.
    with open(folder / f".tip-lock-{key[:2]}", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(SessionConflict) as caught:
            backend.update(key, ChangeSet(updates={"b": 2}), TTL, None)
        assert time.monotonic() - started < 3
    assert caught.value.backend == "file"
    assert backend.read(key)[0] == record(a=1)


KILLER = """
import os, random, signal, sys, time
from tests.test_file import make_backend
from tipsessions.record import Record
folder, kills = sys.argv[1], int(sys.argv[2])
backend = make_backend(path=folder, lock_timeout=0.2)
keys = ["%064x" % n for n in range(4)]
large = Record(data={"blob": "x" * 200_000}, created=1)
for _ in range(kills):
    writer = os.fork()
    if writer == 0:
        while True:
            backend.put(random.choice(keys), large, 3600)
    time.sleep(random.uniform(0.002, 0.02))
    os.kill(writer, signal.SIGKILL)
    os.waitpid(writer, 0)
"""


def test_writers_killed_mid_save_leave_nothing_behind_the_next_save(folder: Path) -> None:
    figures = record_figures(Figures("file", "writer SIGKILLed mid-save"))
    root = Path(__file__).resolve().parent.parent
    kills = 200
    subprocess.run([sys.executable, "-c", KILLER, str(folder), str(kills)], cwd=root, check=True)
    figures.cases = kills
    left = len(list((folder / ".tip-tmp").iterdir()))
    # Whole records only: every session file decodes.
    for path in folder.glob("tip_*.sess"):
        assert Record.from_json(path.read_bytes()).data["blob"] == "x" * 200_000
    time.sleep(0.3)  # the orphans are older than the lock timeout now
    browser = Browser(default_backend="file", file={"path": str(folder), "lock_timeout": 0.2})
    browser(lambda h: h.session.__setitem__("user", "ada"))
    figures.orphans = len(list((folder / ".tip-tmp").iterdir()))
    figures.notes.append(f"{left} temporary files left by {kills} kills, before the next save")
    assert figures.orphans == 0


def test_a_temporary_file_whose_writer_still_holds_it_is_kept(folder: Path) -> None:
    backend = make_backend(path=str(folder), lock_timeout=0.2)
    backend.put(new_key(), record(a=1), TTL)
    writing = folder / ".tip-tmp" / "w-slow-writer"
    with open(writing, "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        time.sleep(0.3)
        backend.put(new_key(), record(a=1), TTL)
        assert writing.exists()
    backend.put(new_key(), record(a=1), TTL)
    assert not writing.exists()


def test_an_orphan_made_after_a_sweep_goes_with_the_first_save_once_it_is_due(
    folder: Path,
) -> None:
    backend = make_backend(path=str(folder), lock_timeout=0.2)
    backend.put(new_key(), record(a=1), TTL)
    orphan = folder / ".tip-tmp" / "w-died-just-now"
    orphan.write_bytes(b"{")  # no writer holds it
    backend.put(new_key(), record(a=1), TTL)
    assert orphan.exists()  # not older than the lock timeout yet
    time.sleep(0.3)
    backend.put(new_key(), record(a=1), TTL)
    assert not orphan.exists()


def test_saves_scan_for_orphans_only_when_one_could_have_come_due(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tipsessions.backends.file as file_module

    scans = []
    original = file_module.sweep

    def counted(*args: Any, **kwargs: Any) -> float:
        scans.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(file_module, "sweep", counted)
    backend = make_backend(path=str(folder), lock_timeout=10)
    for _ in range(20):
        backend.put(new_key(), record(a=1), TTL)
    assert len(scans) == 1


def test_under_degrade_a_lock_timeout_is_an_outage(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(
        default_backend="file",
        file={"path": str(folder), "lock_timeout": 0.2},
        on_backend_error="degrade",
    )
    browser(lambda h: h.session.__setitem__("user", "ada"))
    key = stored_key(browser)
    with open(folder / f".tip-lock-{key[:2]}", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with caplog.at_level(logging.ERROR, logger="tipsessions"):
            browser(lambda h: h.session.__setitem__("user", "bob"))
        assert browser.set_cookies() == []
    assert [r.name for r in caplog.records] == ["tipsessions"]
    assert "not saved" in caplog.text
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}
