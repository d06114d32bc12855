"""A session backend on SQLite: the example of the custom backends page.

Three storage calls and a transaction; ids, signing, expiry rules,
regeneration, decoding and merging are inherited from RecordBackend.
"""

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tipsessions import BackendUnavailable
from tipsessions.backends import BackendOptions, RecordBackend
from tipsessions.cookies import Keyring

SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, record BLOB NOT NULL, expires REAL NOT NULL)"""


@dataclass(frozen=True)
class SQLiteOptions(BackendOptions):
    #: The database file.
    path: str = "sessions.sqlite3"
    #: Seconds a write waits for another one to finish.
    timeout: float = 5.0


class SQLiteBackend(RecordBackend):
    """Sessions in one SQLite file, shared by the processes of one machine."""

    options_class = SQLiteOptions
    options: SQLiteOptions

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self.address = self.options.path
        # One connection per thread: sqlite3 connections must not cross threads.
        self._local = threading.local()
        with self._sql() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, SQLite's errors raised as BackendUnavailable."""
        try:
            if not hasattr(self._local, "db"):
                self._local.db = sqlite3.connect(
                    self.address, timeout=self.options.timeout, isolation_level=None
                )
            yield self._local.db
        except sqlite3.Error as error:
            raise BackendUnavailable(self.name, self.address, str(error)) from error

    @contextmanager
    def atomic(self, key: str) -> Iterator[None]:
        with self._sql() as db:
            # IMMEDIATE takes the write lock before the read: no lost updates.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get(self, key: str) -> tuple[bytes | None, Any]:
        with self._sql() as db:
            row = db.execute(
                "SELECT record FROM sessions WHERE key = ? AND expires > ?", (key, time.time())
            ).fetchone()
        return (None if row is None else row[0]), None

    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        with self._sql() as db:
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (key, raw, time.time() + ttl)
            )

    def remove(self, key: str, version: Any) -> None:
        with self._sql() as db:
            db.execute("DELETE FROM sessions WHERE key = ?", (key,))
