"""What the file backend does on disk: locks between processes, whole-file writes, sweeps.

* **Locks.** Writers hold an exclusive ``flock`` while they read, merge and
  write, so concurrent saves merge. A write renames a new file over the old
  one, so the lock cannot be on the session file, and a lock file per
  session could never be deleted safely (a process waiting on an unlinked
  one would exclude no one). So a folder keeps 256 lock files,
  ``.tip-lock-00`` to ``.tip-lock-ff``, never deleted and never stale. A
  thread lock per stripe queues this process's threads, and the ``flock``,
  polled against a deadline, arbitrates between processes.
* **Whole-file writes.** A record goes to a temporary file on the same file
  system, is fsynced, then renamed over the old one, so readers never lock
  and always see a whole record, old or new.
* **Orphans.** A writer killed mid-write leaves its temporary file. Writers
  hold an ``flock`` on theirs, which dies with them: a temporary file older
  than the lock timeout (by its ctime, which ``utime`` cannot set back) whose
  lock is free is an orphan for certain. A sweep tells when the next one
  could find anything, so saves scan the folder only then, not every time.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

from ..errors import BackendUnavailable, SessionConflict

_T = TypeVar("_T")
_LOCK_PREFIX = ".tip-lock-"
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
#: Seconds a file's ctime may lag ``time.time()``; far more than a kernel tick.
_CTIME_SLACK = 0.05


class StripedLocks:
    """The 256 lock stripes of one folder, held against threads and processes alike."""

    def __init__(self, backend: str, folder: str, timeout: float) -> None:
        self.backend, self.folder, self.timeout = backend, folder, timeout
        self._threads = [threading.Lock() for _ in range(256)]

    @contextmanager
    def hold(self, stripe: str) -> Iterator[None]:
        """Hold ``stripe`` (two hex digits); :class:`SessionConflict` after the timeout."""
        deadline = time.monotonic() + self.timeout
        thread_lock = self._threads[int(stripe, 16)]
        if not thread_lock.acquire(timeout=self.timeout):
            raise SessionConflict(self.backend, 1)
        try:
            path = os.path.join(self.folder, _LOCK_PREFIX + stripe)
            try:
                fd = creating(self.folder, lambda: os.open(path, _LOCK_FLAGS, 0o600))
            except OSError as error:
                reason = f"{type(error).__name__}: {error}"
                raise BackendUnavailable(self.backend, self.folder, reason) from error
            try:
                attempts = 1
                # Polled: a blocking flock would wait forever behind a hung writer.
                while not _try_lock(fd):
                    if time.monotonic() > deadline:
                        raise SessionConflict(self.backend, attempts)
                    time.sleep(min(0.001 * attempts, 0.02))
                    attempts += 1
                yield
            finally:
                os.close(fd)  # releases the flock
        finally:
            thread_lock.release()


def write_whole(path: str, raw: bytes, expires: float, temp_folder: str) -> None:
    """Replace ``path`` with a file of ``raw`` whose mtime is ``expires``, atomically."""
    # 0600, and on the folder's file system, where os.replace is atomic.
    fd, temp = creating(temp_folder, lambda: tempfile.mkstemp(prefix="w-", dir=temp_folder))
    try:
        with os.fdopen(fd, "wb") as file:
            # Held until closed: tells a live writer from a dead one.
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            file.write(raw)
            file.flush()
            os.utime(file.fileno(), (expires, expires))
            os.fsync(file.fileno())
            os.replace(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


def sweep(folder: str, older_than: float, prefix: str = "") -> float:
    """Remove the temporary files in ``folder`` whose writer is gone; return when to look again.

    A file becomes an orphan candidate ``older_than`` seconds after its
    ctime. Every file this scan saw is either removed or has a ctime here,
    and a file made after the scan has a later one, so until the returned
    time no candidate can exist that this scan did not already consider.

    Best effort: one that another process removes first, or that cannot be
    removed, is left to the next sweep.
    """
    now = time.time()
    # ctime comes from the kernel's coarse clock, a tick behind time.time().
    due = now - _CTIME_SLACK + older_than
    try:
        with os.scandir(folder) as entries:
            found = [entry for entry in entries if entry.name.startswith(prefix)]
    except OSError:
        return now
    for entry in found:
        try:
            changed = entry.stat(follow_symlinks=False).st_ctime
            if changed >= now - older_than:
                due = min(due, changed + older_than)
                continue
            _remove_orphan(entry.path)
        except FileNotFoundError:
            continue  # renamed by its writer, or removed by another sweep
        except OSError:
            due = now  # its writer still holds it, or it cannot go: look again next time
    return due


def creating(folder: str, create: Callable[[], _T]) -> _T:
    """``create()`` a file in ``folder``, making the folder first, private, if it is missing."""
    try:
        return create()
    except FileNotFoundError:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        return create()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _remove_orphan(temp: str) -> None:
    fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Temporary names are never reused, so the name still means this
        # file, or nothing if its writer renamed it meanwhile.
        os.unlink(temp)
    finally:
        os.close(fd)
