"""``file``: one JSON file per session in a private folder.

Needs no server, survives restarts and is shared by every process of one
machine; POSIX only, on a local file system (``flock`` is dependable only
there). How it locks and writes is in :mod:`~tipsessions.backends.file_io`.

* **Paths.** A file is named after the storage key, 64 hex digits checked
  with ``re.fullmatch`` (``$`` would take a trailing newline) before any path
  is built, so no key reaches outside the folder.
* **Expiry is the mtime.** A touch is one ``os.utime``, and a file whose
  mtime has passed reads as missing until ``purge`` deletes it.
* **Temporary files** live in ``.tip-tmp``, where saves and ``purge`` find
  the orphans of writers that died mid-write. A save looks only once one
  could have come due, so most saves skip the scan.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from ..cookies import Keyring
from ..errors import BackendUnavailable, ConfigError
from .file_io import StripedLocks, sweep, write_whole
from .options import BackendOptions
from .records import RecordBackend

_KEY = re.compile(r"[0-9a-f]{64}")
#: Temporary files live in this subfolder; earlier versions left them in
#: the folder itself under this same prefix, and ``purge`` still removes those.
_TEMP_FOLDER = _TEMP_PREFIX = ".tip-tmp"


@dataclass(frozen=True)
class FileOptions(BackendOptions):
    #: Folder of the session files; ``None`` is ``./sessions``.
    path: str | None = None
    #: File name of a session; ``%s`` receives a hash of its id.
    filename_template: str = "tip_%s.sess"
    #: Seconds a save waits for another writer's lock before giving up: a lock
    #: is held for one small local read and write, so longer means a stuck writer.
    lock_timeout: float = 10.0

    def check(self, where: str) -> FileOptions:
        if self.filename_template.count("%s") == 1 and "/" not in self.filename_template:
            return self
        raise ConfigError(f"{where}.filename_template", "must be a file name with exactly one %s")


class FileBackend(RecordBackend):
    """One file per session in a private folder, locked against other writers."""

    options_class = FileOptions
    options: FileOptions

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        # Resolved now: a later chdir() must not move the sessions.
        self.path = self.address = os.path.abspath(self.options.path or "sessions")
        self._prefix, self._suffix = self.options.filename_template.split("%s")
        self.temp_path = os.path.join(self.path, _TEMP_FOLDER)
        self._locks = StripedLocks(name, self.path, self.options.lock_timeout)
        self._sweep_due = 0.0

    def _file(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError("a file backend storage key is 64 lowercase hex digits")
        return os.path.join(self.path, self._prefix + key + self._suffix)

    @contextmanager
    def _disk(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            reason = f"{type(error).__name__}: {error}"
            raise BackendUnavailable(self.name, self.path, reason) from error

    def atomic(self, key: str) -> AbstractContextManager[None]:
        self._file(key)  # no lock for a key that can have no file
        return self._locks.hold(key[:2])

    def get(self, key: str) -> tuple[bytes | None, Any]:
        path = self._file(key)
        with self._disk():
            try:
                with open(path, "rb") as file:
                    expires = os.fstat(file.fileno()).st_mtime
                    raw = file.read()
            except FileNotFoundError:
                return None, None
        return (raw if expires > time.time() else None), None

    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        path = self._file(key)
        now = time.time()
        with self._disk():
            write_whole(path, raw, now + ttl, self.temp_path)
        if now >= self._sweep_due:
            self._sweep_due = sweep(self.temp_path, self.options.lock_timeout)

    def remove(self, key: str, version: Any) -> None:
        path = self._file(key)
        with self._disk(), suppress(FileNotFoundError):
            os.unlink(path)

    def extend(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        path, expires = self._file(key), time.time() + ttl
        with self._disk():
            os.utime(path, (expires, expires))

    def _expired_keys(self, before: float) -> Iterator[str]:
        with self._disk(), suppress(FileNotFoundError), os.scandir(self.path) as entries:
            for entry in entries:
                key = entry.name[len(self._prefix) : len(entry.name) - len(self._suffix)]
                if entry.name == self._prefix + key + self._suffix and _KEY.fullmatch(key):
                    with suppress(FileNotFoundError):
                        if entry.stat(follow_symlinks=False).st_mtime <= before:
                            yield key

    def count_expired(self, before: float) -> int | None:
        """How many session files expired at ``before`` (a timestamp)."""
        return sum(1 for _ in self._expired_keys(before))

    def purge_expired(self, before: float, batch_size: int) -> Iterator[int]:
        """Delete the files expired at ``before``, yielding each batch's count."""
        sweep(self.temp_path, self.options.lock_timeout)
        sweep(self.path, self.options.lock_timeout, prefix=_TEMP_PREFIX + "-")
        deleted = 0
        for key in self._expired_keys(before):
            path = self._file(key)
            with self.atomic(key), self._disk(), suppress(FileNotFoundError):
                # Checked again under the lock, against a concurrent rewrite.
                if os.stat(path).st_mtime <= before:
                    os.unlink(path)
                    deleted += 1
            if deleted == batch_size:
                yield deleted
                deleted = 0
        if deleted:
            yield deleted
