"""``file``: one JSON file per session in a private folder.

Needs no server, survives restarts and is shared by every process of one
machine; POSIX only (``fcntl``), and a local file system only: ``flock``
is dependable only there (Linux emulates it on NFS with other semantics).

* **Paths.** A file is named after the storage key, a 64-character hex
  digest, checked with ``re.fullmatch`` before any path is built (``$`` would
  accept a trailing newline), so no key can reach outside the folder.
* **Expiry lives in the mtime.** A file's modification time is set to its
  expiry time, so ``touch`` rewrites nothing (an ``os.utime`` once the
  record is known to be live), and a file whose mtime has passed reads as
  missing until ``purge`` deletes it.
* **Atomic writes.** Data goes to a temporary file in the ``.tip-tmp``
  subfolder (the same file system), is flushed and fsynced, then renamed
  over the old one with ``os.replace``, so readers never lock and always see
  a whole record, old or new.
* **Orphans.** A writer killed mid-write leaves its temporary file behind.
  Keeping them apart in ``.tip-tmp`` makes them cheap to find: every save
  lists that small folder and removes what is an orphan for certain. A
  writer holds an ``flock`` on its temporary file, which the kernel releases
  when the writer dies, so a file that is older than the lock timeout (by
  its ctime, which ``utime`` cannot set back) and whose lock is free has no
  writer left. ``purge`` sweeps them too.
* **Locks.** Writers hold an exclusive ``flock`` while they read, merge and
  replace, so concurrent saves merge instead of overwriting each other.
  ``os.replace`` gives the session file a new inode, so the lock cannot be on
  the session file itself, and a lock file per session could never be
  deleted safely (a process still waiting on an unlinked lock file would
  exclude no one). So the folder has a fixed set of 256 lock files,
  ``.tip-lock-00`` to ``.tip-lock-ff``, chosen by the key's first two hex
  digits: never deleted, never stale, and two sessions rarely share one.
  A thread lock per stripe queues this process's threads in front of the
  ``flock``, which then only arbitrates between processes.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from ..cookies import Keyring
from ..errors import BackendUnavailable, SessionConflict
from ..record import ChangeSet, Record
from .base import WriteResult, apply_changes
from .server import ServerBackend

_KEY = re.compile(r"[0-9a-f]{64}")
_LOCK_PREFIX = ".tip-lock-"
#: Temporary files live in this subfolder; earlier versions left them in
#: the folder itself under this same prefix, and ``purge`` still removes those.
_TEMP_FOLDER = _TEMP_PREFIX = ".tip-tmp"


class FileBackend(ServerBackend):
    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        # Resolved now: a later chdir() must not move the sessions.
        self.path = self.address = os.path.abspath(options.get("path") or "sessions")
        template = str(options.get("filename_template", "tip_%s.sess"))
        self._prefix, self._suffix = template.split("%s")
        self.temp_path = os.path.join(self.path, _TEMP_FOLDER)
        #: Seconds a save waits for its lock. A lock is held for one small
        #: local read and write: waiting longer means another writer is stuck.
        self.lock_timeout = float(options.get("lock_timeout", 10.0))
        self._stripes = [threading.Lock() for _ in range(256)]

    def _file(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError("a file backend storage key is 64 lowercase hex digits")
        return os.path.join(self.path, self._prefix + key + self._suffix)

    def _unavailable(self, error: OSError) -> BackendUnavailable:
        return BackendUnavailable(self.name, self.path, f"{type(error).__name__}: {error}")

    def _open_lock(self, stripe: str) -> int:
        lock_file = os.path.join(self.path, _LOCK_PREFIX + stripe)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            try:
                return os.open(lock_file, flags, 0o600)
            except FileNotFoundError:
                # The first write creates the folder, private to its owner.
                os.makedirs(self.path, mode=0o700, exist_ok=True)
                return os.open(lock_file, flags, 0o600)
        except OSError as error:
            raise self._unavailable(error) from error

    @contextmanager
    def _locked(self, key: str) -> Iterator[str]:
        path = self._file(key)
        deadline = time.monotonic() + self.lock_timeout
        stripe = self._stripes[int(key[:2], 16)]
        if not stripe.acquire(timeout=self.lock_timeout):
            raise SessionConflict(self.name, 1)
        try:
            fd = self._open_lock(key[:2])
            try:
                attempts = 1
                # Non-blocking, polled: a blocking flock would wait forever
                # behind a process that hangs while holding the lock.
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise SessionConflict(self.name, attempts) from None
                        time.sleep(min(0.001 * attempts, 0.02))
                        attempts += 1
                yield path
            finally:
                os.close(fd)  # releases the flock
        finally:
            stripe.release()

    def _load(self, path: str) -> Record | None:
        try:
            with open(path, "rb") as file:
                expires = os.fstat(file.fileno()).st_mtime
                raw = file.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._unavailable(error) from error
        if expires <= time.time():
            return None
        try:
            return Record.from_json(raw)
        except ValueError as error:
            self.log_undecodable(f"in {path}", type(error).__name__)
            return None

    def read(self, key: str) -> tuple[Record | None, Any]:
        return self._load(self._file(key)), None

    def _temp_file(self) -> tuple[int, str]:
        # mkstemp creates the file 0600, under the same folder so that
        # os.replace is an atomic rename on one file system.
        try:
            return tempfile.mkstemp(prefix="w-", dir=self.temp_path)
        except FileNotFoundError:
            os.makedirs(self.temp_path, mode=0o700, exist_ok=True)
            return tempfile.mkstemp(prefix="w-", dir=self.temp_path)

    def _write(self, path: str, record: Record, ttl: int) -> None:
        try:
            fd, temp = self._temp_file()
            try:
                with os.fdopen(fd, "wb") as file:
                    # Held until closed: tells a live writer from a dead one.
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
                    file.write(record.to_json())
                    file.flush()
                    expires = time.time() + ttl
                    os.utime(file.fileno(), (expires, expires))
                    os.fsync(file.fileno())
                    os.replace(temp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as error:
            raise self._unavailable(error) from error
        self._sweep(self.temp_path)

    def _sweep(self, folder: str, prefix: str = "") -> None:
        """Remove the temporary files in ``folder`` whose writer is gone.

        Best effort: a file another process removes first, or one that
        cannot be removed, is left to the next sweep.
        """
        cutoff = time.time() - self.lock_timeout
        try:
            with os.scandir(folder) as entries:
                found = [entry for entry in entries if entry.name.startswith(prefix)]
        except OSError:
            return
        for entry in found:
            with suppress(OSError):
                if entry.stat(follow_symlinks=False).st_ctime < cutoff:
                    self._remove_orphan(entry.path)

    @staticmethod
    def _remove_orphan(temp: str) -> None:
        fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Temporary names are never reused, so the name still means
            # this file, or nothing if its writer renamed it meanwhile.
            os.unlink(temp)
        finally:
            os.close(fd)

    def _unlink(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise self._unavailable(error) from error

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self._locked(key) as path:
            self._write(path, record, ttl)

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        with self._locked(key) as path:
            result, merged = apply_changes(self._load(path), changes)
            if merged is not None:
                self._write(path, merged, ttl)
            elif result is WriteResult.DELETED:
                self._unlink(path)
            return result

    def delete(self, key: str) -> None:
        with self._locked(key) as path:
            self._unlink(path)

    def touch(self, key: str, ttl: int) -> bool:
        with self._locked(key) as path:
            # Expired or retired stays so: touch never revives a session.
            record = self._load(path)
            if record is None or record.tombstone:
                return False
            expires = time.time() + ttl
            try:
                os.utime(path, (expires, expires))
            except OSError as error:
                raise self._unavailable(error) from error
            return True

    # -- purge (python -m tipsessions purge) ----------------------------------

    def _expired_keys(self, before: float) -> Iterator[str]:
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    name = entry.name
                    key = name[len(self._prefix) : len(name) - len(self._suffix)]
                    if name == self._prefix + key + self._suffix and _KEY.fullmatch(key):
                        with suppress(FileNotFoundError):
                            if entry.stat(follow_symlinks=False).st_mtime <= before:
                                yield key
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._unavailable(error) from error

    def count_expired(self, before: float) -> int | None:
        """How many session files expired at ``before`` (a timestamp)."""
        return sum(1 for _ in self._expired_keys(before))

    def purge_expired(self, before: float, batch_size: int) -> Iterator[int]:
        """Delete the files expired at ``before``, yielding each batch's count."""
        self._sweep(self.temp_path)
        self._sweep(self.path, prefix=_TEMP_PREFIX + "-")
        deleted = 0
        for key in self._expired_keys(before):
            with self._locked(key) as path:
                # Checked again under the lock, against a concurrent rewrite.
                try:
                    if os.stat(path).st_mtime > before:
                        continue
                except FileNotFoundError:
                    continue
                except OSError as error:
                    raise self._unavailable(error) from error
                self._unlink(path)
            deleted += 1
            if deleted == batch_size:
                yield deleted
                deleted = 0
        if deleted:
            yield deleted
