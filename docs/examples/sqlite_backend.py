"""A session backend on SQLite: the example of the custom backends page.

Five storage calls, each one transaction; ids, signing, expiry rules,
regeneration and the merge logic are inherited from ServerBackend.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tipsessions import BackendUnavailable
from tipsessions.backends import ServerBackend, WriteResult, apply_changes
from tipsessions.cookies import Keyring
from tipsessions.record import ChangeSet, Record

SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, record BLOB NOT NULL, expires REAL NOT NULL)"""


class SQLiteBackend(ServerBackend):
    """Sessions in one SQLite file, shared by the processes of one machine."""

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        super().__init__(name, options, keyring)
        self.path = str(options.get("path", "sessions.sqlite3"))
        self.address = self.path
        with self._db() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: sqlite3 connections must not cross threads.
        try:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        except sqlite3.Error as error:
            raise BackendUnavailable(self.name, self.address, str(error)) from error
        try:
            yield db
        except sqlite3.OperationalError as error:
            raise BackendUnavailable(self.name, self.address, str(error)) from error
        finally:
            db.close()

    def _current(self, db: sqlite3.Connection, key: str) -> Record | None:
        row = db.execute(
            "SELECT record FROM sessions WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return None if row is None else Record.from_json(row[0])

    def _write(self, db: sqlite3.Connection, key: str, record: Record, ttl: int) -> None:
        db.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
            (key, record.to_json(), time.time() + ttl),
        )

    def read(self, key: str) -> tuple[Record | None, Any]:
        with self._db() as db:
            return self._current(db, key), None

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self._db() as db:
            self._write(db, key, record, ttl)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db() as db:
            # IMMEDIATE takes the write lock before the read: no lost updates.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        with self._transaction() as db:
            result, merged = apply_changes(self._current(db, key), changes)
            if merged is not None:
                self._write(db, key, merged, ttl)
            elif result is WriteResult.DELETED:
                db.execute("DELETE FROM sessions WHERE key = ?", (key,))
        return result

    def delete(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE key = ?", (key,))

    def touch(self, key: str, ttl: int) -> bool:
        with self._transaction() as db:
            # Only a live session: an expired one stays expired, and a
            # tombstone keeps the grace regenerate_id() gave it.
            record = self._current(db, key)
            if record is None or record.tombstone:
                return False
            db.execute("UPDATE sessions SET expires = ? WHERE key = ?", (time.time() + ttl, key))
        return True
