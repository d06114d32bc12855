"""Server-side backends: a signed random id in the cookie, the record on a server.

Everything but storage lives here once: ids and their signatures, expiry,
regeneration with tombstones, and the rules that keep concurrent requests
from undoing each other. A subclass implements five record calls, each
ideally one round trip; :class:`~tipsessions.backends.records.RecordBackend`
implements them on raw get, set and delete for stores of whole records.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..record import ChangeSet, Record
from .base import (
    EXPIRE_COOKIE,
    KEEP_COOKIE,
    Backend,
    Lifetime,
    Loaded,
    Pending,
    SaveResult,
    WriteResult,
    expired,
    genuine,
    log_rejected,
    log_undecodable,
    set_cookie,
)

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def new_session_id() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def storage_digest(session_id: str) -> str:
    """What a session's record is stored under: a digest of its id, never the id.

    A dump of the backend then holds nothing that can be replayed as a
    cookie, since the digest does not give back 256 random bits. It depends
    on no secret: every process finds a record under the same key whatever
    secrets it holds, so rotating secrets moves no record.
    """
    return hashlib.sha256(b"tipsessions session id:" + session_id.encode("ascii")).hexdigest()


@dataclass
class ServerHandle:
    """A server-side session's bookkeeping between load and save."""

    sent: bool
    session_id: str | None = None
    #: Storage key of the record (a digest of the id, prefixed).
    key: str | None = None
    #: Opaque token from ``read`` for optimistic updates (memcache's cas).
    version: Any = None
    issued: float | None = None
    #: The id was retired by ``regenerate_id()``: never save, never set a cookie.
    retired: bool = False
    #: The cookie verified with an older secret: sign it again with the
    #: current one, or the session would end when that secret is retired.
    resign: bool = False


class ServerBackend(Backend):
    """Keeps a signed random id in the cookie and the record on a server.

    Subclasses implement the five record calls below and set
    :attr:`address` for error messages.
    """

    #: Where the server is, for :class:`~tipsessions.BackendUnavailable`.
    address: str = "(in process)"
    #: True when the server may drop live records to make room (memcached):
    #: such a backend cannot hold the user registry.
    evicts: bool = False

    @abstractmethod
    def read(self, key: str) -> tuple[Record | None, Any]:
        """The record (or tombstone) under ``key`` and a version token, or ``(None, None)``."""

    @abstractmethod
    def put(self, key: str, record: Record, ttl: int) -> None:
        """Store ``record`` whole under ``key`` for ``ttl`` seconds, replacing anything."""

    @abstractmethod
    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        """Atomically merge ``changes`` into the *current* record under ``key``.

        Only a live record is updated (``GONE`` otherwise); one the merge
        empties is deleted (``DELETED``). Retry a lost race a bounded number
        of times, then raise :class:`~tipsessions.SessionConflict`.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the record under ``key``, if any."""

    @abstractmethod
    def touch(self, key: str, ttl: int) -> bool:
        """Extend a live record's expiry to ``ttl`` seconds from now, data untouched.

        False, touching nothing, when there is no live record: it expired, or
        a concurrent request invalidated it or made it a tombstone, whose
        expiry must not be extended and whose cookie must not be re-issued.
        """

    def log_undecodable(self, where: str, reason: str) -> None:
        """Log a stored record that does not decode; the caller treats it as missing."""
        log_undecodable(self.name, where, reason)

    def fingerprint(self, handle: Any) -> str | None:
        """The first hex digits of the id's digest: shows a regeneration, reveals nothing."""
        key = handle.key if isinstance(handle, ServerHandle) else None
        return None if key is None else key[-64:][:8]

    def storage_key(self, session_id: str) -> str:
        return str(self.options.get("prefix", "")) + storage_digest(session_id)

    def idle_window(self, lifetime: Lifetime) -> int:
        windows = [w for w in (lifetime.idle or lifetime.server_ttl, lifetime.cookie_max_age) if w]
        return min(windows)

    def ttl(self, lifetime: Lifetime, created: float, now: float) -> int:
        """Whole seconds to keep a record: never less than it may still be used."""
        ttl: float = lifetime.idle or lifetime.server_ttl
        if lifetime.absolute is not None:
            ttl = min(ttl, created + lifetime.absolute - now)
        return max(math.ceil(ttl), 1)

    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Loaded:
        handle = ServerHandle(sent=bool(cookie_values))
        opened = genuine(self.name, cookie_name, cookie_values, self.keyring.verify)
        for raw, issued, current in opened:
            session_id = raw.decode("latin-1")
            if not _SESSION_ID.fullmatch(session_id):
                log_rejected(self.name, cookie_name, "malformed session id")
                continue
            key = self.storage_key(session_id)
            record, version = self.read(key)
            if record is None:
                if time.time() - issued >= self.idle_window(lifetime):
                    log_rejected(self.name, cookie_name, "expired")
                continue
            if record.tombstone:
                handle.retired = True
                return Loaded(None, handle)
            reason = expired(lifetime.chosen(record.max_age), record.created, issued)
            if reason:
                log_rejected(self.name, cookie_name, reason)
                continue
            handle.session_id, handle.key, handle.version = session_id, key, version
            handle.issued, handle.resign = issued, not current
            return Loaded(record, handle)
        return Loaded(None, handle)

    def save(
        self, cookie_name: str, handle: Any, pending: Pending, lifetime: Lifetime
    ) -> SaveResult:
        assert isinstance(handle, ServerHandle)
        if handle.retired:
            return KEEP_COOKIE
        now = time.time()
        lifetime = lifetime.chosen(pending.max_age)
        if pending.invalidated and handle.key is not None:
            self.delete(handle.key)
            handle.session_id = handle.key = None
        if handle.key is None:
            return self._create(cookie_name, handle, pending, lifetime, now)
        if pending.regenerate_requested:
            old_key, handle.session_id, handle.key = handle.key, None, None
            created = self._create(cookie_name, handle, pending, lifetime, now)
            self._retire(old_key, lifetime.regenerate_grace)
            return created if created.changes_cookie else EXPIRE_COOKIE
        changes = pending.changes() if pending.modified else ChangeSet()
        ttl = self.ttl(lifetime, pending.created, now)
        window = self.idle_window(lifetime)
        refresh = handle.resign or lifetime.refresh_due(handle.issued, now, window)
        if changes:
            result = self.update(handle.key, changes, ttl, handle.version)
            if result is WriteResult.GONE:
                # Invalidated or regenerated by a concurrent request: its
                # outcome stands, and this response must not undo its cookie.
                handle.retired = True
                return KEEP_COOKIE
            if result is WriteResult.DELETED:
                handle.session_id = handle.key = None
                return EXPIRE_COOKIE
        elif refresh and not self.touch(handle.key, ttl):
            # Ended by a concurrent request: re-issuing the old id's cookie
            # would overwrite the one that request set.
            handle.retired = True
            return KEEP_COOKIE
        if refresh or changes.max_age is not None:
            # A new lifetime changes the cookie's Max-Age too.
            return self._issue(cookie_name, handle, now)
        return KEEP_COOKIE

    def _create(
        self,
        cookie_name: str,
        handle: ServerHandle,
        pending: Pending,
        lifetime: Lifetime,
        now: float,
    ) -> SaveResult:
        record = pending.to_record()
        if record.is_empty():
            return EXPIRE_COOKIE if pending.invalidated and handle.sent else KEEP_COOKIE
        ttl = self.ttl(lifetime, record.created, now)
        handle.session_id, handle.key = self.place_new(record, ttl)
        return self._issue(cookie_name, handle, now)

    def place_new(self, record: Record, ttl: int) -> tuple[str, str]:
        """Store a brand-new session under a fresh id; return the id and its key.

        A new id has no state anywhere yet, so a backend that spreads keys
        over servers may draw another one when the first lands on a server
        that is down.
        """
        session_id = new_session_id()
        key = self.storage_key(session_id)
        self.put(key, record, ttl)
        return session_id, key

    def _retire(self, key: str, grace: int) -> None:
        """Leave a tombstone where a regenerated id was, for ``grace`` seconds, or delete it."""
        if grace:
            self.put(key, Record(tombstone=True), grace)
        else:
            self.delete(key)

    def _issue(self, cookie_name: str, handle: ServerHandle, now: float) -> SaveResult:
        assert handle.session_id is not None
        handle.sent, handle.issued = True, now
        return set_cookie(
            self.keyring.sign(cookie_name, handle.session_id.encode(), compress=False)
        )
