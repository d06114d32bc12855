"""Whole-record stores: the five record calls of a server backend, on raw storage.

A store that keeps each session as one value (a dict, a file, a memcached
item, a Datastore entity, a table row) implements four raw calls:

* :meth:`~RecordBackend.atomic`: a scope in which no other writer of the key
  interleaves: a lock, or a transaction;
* :meth:`~RecordBackend.get`: the bytes of the live record and a version;
* :meth:`~RecordBackend.set` and :meth:`~RecordBackend.remove`: write or delete.

and :class:`RecordBackend` does the rest once, above them: decoding (a record
that does not decode is logged and read as missing), merging a change set
into the *current* record, touching live records only, and trying a merge
that lost a race again, a bounded number of times, before
:class:`~tipsessions.SessionConflict`.

Stores keep concurrent saves from undoing each other in one of three ways,
and the calls allow each. A locking store (files, SQL) excludes other writers
in ``atomic``, so an update reads again inside the scope and never loses. An
optimistic one (memcached) locks nothing: ``get`` returns a version, a write
succeeds only while it is current (compare-and-set), so an update merges into
the record the load already read and writes with its version: one round trip,
and a read again only after a lost race. A transactional store (Datastore)
reads and writes inside a transaction that may still fail when it commits.
Either of the last two says so by raising :class:`LostRace`.
"""

from __future__ import annotations

import random
import time
from abc import abstractmethod
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, NamedTuple

from ..errors import SessionConflict
from ..record import ChangeSet, Record
from .base import WriteResult, apply_changes
from .server import ServerBackend

#: The bytes of every tombstone, for a store that marks them (see memcache).
TOMBSTONE = Record(tombstone=True).to_json()


class LostRace(Exception):
    """Another writer came first.

    Raised by a raw call inside :meth:`RecordBackend.atomic`, or by the scope
    itself as it ends (a commit that failed). The merge is then tried again
    on what is current; a touch touches nothing.
    """


class _Seen(NamedTuple):
    """What an optimistic store's load read: the bytes and their version."""

    raw: bytes
    version: Any


class RecordBackend(ServerBackend):
    """A server backend of whole records, built on four raw storage calls."""

    #: True when :meth:`set` and :meth:`remove` write only while the version
    #: :meth:`get` returned is current, and :meth:`atomic` excludes no one:
    #: a save then writes with the version its load read.
    optimistic: ClassVar[bool] = False
    #: Tries of a merge that keeps losing races, and the bounds of the random
    #: pause between two: contenders spread out, so one of them wins the next
    #: round. A locking store never loses one.
    max_attempts: ClassVar[int] = 32
    first_delay: ClassVar[float] = 0.001
    max_delay: ClassVar[float] = 0.032

    def atomic(self, key: str) -> AbstractContextManager[Any]:
        """A scope in which no other writer of ``key`` interleaves.

        Every write runs inside one, and an update or a touch reads inside it
        too: a lock, a transaction, or nothing for an optimistic store.
        """
        return nullcontext()

    @abstractmethod
    def get(self, key: str) -> tuple[bytes | None, Any]:
        """The bytes of the record under ``key`` and its version, or ``(None, None)``.

        An expired record is missing. The version is what :meth:`set` and
        :meth:`remove` check on an optimistic store, and ``None`` elsewhere.
        """

    @abstractmethod
    def set(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        """Store ``raw`` under ``key`` for ``ttl`` seconds.

        With a ``version`` (an optimistic store, in an update) only while it
        is current, or raise :class:`LostRace`; without one, replace anything.
        """

    @abstractmethod
    def remove(self, key: str, version: Any) -> None:
        """Delete the record under ``key``, if any; as :meth:`set` for ``version``."""

    def extend(self, key: str, raw: bytes, ttl: int, version: Any) -> None:
        """Keep the live record ``raw`` for ``ttl`` seconds from now.

        Stores it again; a store that can change an expiry alone does that.
        """
        self.set(key, raw, ttl, version)

    def read(self, key: str) -> tuple[Record | None, Any]:
        raw, version = self.get(key)
        record = self._decode(key, raw)
        if record is None or raw is None:
            return None, None
        return record, _Seen(raw, version) if self.optimistic else None

    def put(self, key: str, record: Record, ttl: int) -> None:
        with self.atomic(key):
            self.set(key, record.to_json(), ttl, None)

    def delete(self, key: str) -> None:
        with self.atomic(key):
            self.remove(key, None)

    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        seen = version if isinstance(version, _Seen) else None
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.atomic(key):
                    raw, current = seen or self.get(key)
                    result, merged = apply_changes(self._decode(key, raw), changes)
                    if merged is not None:
                        self.set(key, merged.to_json(), ttl, current)
                    elif result is WriteResult.DELETED:
                        self.remove(key, current)
                return result
            except LostRace:
                seen = None
                if attempt < self.max_attempts:
                    pause = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
                    time.sleep(random.uniform(0, pause))
        raise SessionConflict(self.name, self.max_attempts)

    def touch(self, key: str, ttl: int) -> bool:
        try:
            with self.atomic(key):
                raw, version = self.get(key)
                record = self._decode(key, raw)
                # Expired or retired stays so: touch never revives a session,
                # and a tombstone keeps the grace regenerate_id() gave it.
                if record is None or raw is None or record.tombstone:
                    return False
                self.extend(key, raw, ttl, version)
            return True
        except LostRace:
            # The other writer may have left the tombstone of a regenerate,
            # whose cookie must not be issued again.
            return False

    def _decode(self, key: str, raw: bytes | None) -> Record | None:
        if raw is None:
            return None
        try:
            return Record.from_json(raw)
        except ValueError as error:
            self.log_undecodable(f"under {key!r}", type(error).__name__)
            return None
