"""The backend interface, and the logic every backend of a kind shares.

A backend turns a request's cookie into a :class:`~tipsessions.Session`
(:meth:`Backend.load`) and a changed session back into a cookie update
(:meth:`Backend.save`). Two bases do the work once:

* :class:`CookieBackend` keeps the whole session in the cookie; a subclass
  only says how to seal and open the value.
* :class:`ServerBackend` keeps a signed random id in the cookie and the data
  on a server; a subclass implements five storage calls (``read``, ``put``,
  ``update``, ``delete``, ``touch``), each one round trip, and everything
  else -- ids, signing, expiry, regeneration, merging rules -- lives here.
"""

from __future__ import annotations

import enum
import logging
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..cookies import BadCookie, Keyring
from ..errors import SessionTooLarge
from ..record import ChangeSet, Record
from ..session import Session

security_log = logging.getLogger("tipsessions.security")

#: Browsers keep a cookie's name and value up to 4096 bytes; a few bytes are
#: left for the ``=`` and quirks of older engines.
MAX_COOKIE_BYTES = 4093


@dataclass(frozen=True)
class Lifetime:
    """How long one session lives; built by the store from the settings."""

    idle: int | None
    absolute: int | None
    refresh_interval: int
    cookie_max_age: int | None
    server_ttl: int
    regenerate_grace: int

    def outlived(self, created: int, now: int) -> bool:
        """True once the absolute lifetime is over; activity never extends it."""
        return self.absolute is not None and now - created > self.absolute

    def refresh_due(self, issued: int | None, now: int, window: int | None) -> bool:
        """Whether a read-only request should re-issue the cookie now.

        Throttled to ``refresh_interval`` but at least ten times per
        ``window``, so a session in use never lapses for want of a refresh.
        """
        if issued is None or window is None:
            return False
        return now - issued >= min(self.refresh_interval, window // 10)


class CookieUpdate(NamedTuple):
    """What the response must do with a session's cookie."""

    #: The new cookie value, or ``None`` to expire the cookie.
    value: str | None


def log_rejected(backend: str, cookie_name: str, reason: str) -> None:
    # The value is never logged: it may be a valid credential of someone else.
    security_log.warning(
        "rejected the %r cookie of the %s backend (%s); starting a new session",
        cookie_name,
        backend,
        reason,
    )


class Backend(ABC):
    """A session storage. One instance per application, shared by its threads.

    ``options`` is the backend's own section of the configuration (for
    example ``config["tipsessions"]["redis"]``), defaults filled in.
    """

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        self.name = name
        self.options = options
        self.keyring = keyring

    @abstractmethod
    def load(self, cookie_name: str, cookie_value: str | None, lifetime: Lifetime) -> Session:
        """The session for a request's cookie value (``None``: no cookie).

        A bad, expired or unknown value is not an error: it gives a new,
        empty session.
        """

    @abstractmethod
    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        """Store what changed; return the cookie update, or ``None`` for none."""


@dataclass
class CookieState:
    sent: bool
    issued: int | None = None


class CookieBackend(Backend):
    """Keeps the whole session in its cookie; the client holds the data.

    Such sessions cannot be revoked on the server and cannot merge
    concurrent requests: the last response a browser receives wins.
    """

    @abstractmethod
    def seal(self, cookie_name: str, payload: bytes) -> str:
        """The cookie value carrying ``payload``."""

    @abstractmethod
    def open(self, cookie_name: str, value: str, max_age: int | None) -> tuple[bytes, int]:
        """``(payload, issued_at)``; raises ``BadCookie`` when not genuine or too old."""

    def load(self, cookie_name: str, cookie_value: str | None, lifetime: Lifetime) -> Session:
        state = CookieState(sent=cookie_value is not None)
        if cookie_value is None:
            return Session(state=state)
        try:
            payload, issued = self.open(cookie_name, cookie_value, lifetime.idle)
            record = Record.from_json(payload)
            if record.tombstone:
                raise ValueError("not a session")
        except (BadCookie, ValueError) as error:
            log_rejected(self.name, cookie_name, str(error) or type(error).__name__)
            return Session(state=state)
        if lifetime.outlived(record.created, int(time.time())):
            log_rejected(self.name, cookie_name, "past its absolute lifetime")
            return Session(state=state)
        state.issued = issued
        return Session(record, new=False, state=state)

    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        state: CookieState = session.state
        now = int(time.time())
        windows = [w for w in (lifetime.idle, lifetime.cookie_max_age) if w]
        if not session.modified and not lifetime.refresh_due(
            state.issued, now, min(windows, default=None)
        ):
            return None
        record = session.to_record()
        if record.is_empty():
            state.issued = None
            return CookieUpdate(None) if state.sent else None
        value = self.seal(cookie_name, record.to_json())
        size = len(cookie_name.encode()) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(cookie_name, size, MAX_COOKIE_BYTES)
        state.sent, state.issued = True, now
        return CookieUpdate(value)


class WriteResult(enum.Enum):
    """The outcome of :meth:`ServerBackend.update`."""

    WRITTEN = "written"
    #: The merge left nothing to keep, so the record was deleted.
    DELETED = "deleted"
    #: No live record: invalidated, regenerated or expired meanwhile.
    GONE = "gone"


def apply_changes(current: Record | None, changes: ChangeSet) -> tuple[WriteResult, Record | None]:
    """The merge every whole-record backend performs inside its atomic update.

    Only live records are updated: a save must never bring back a session
    another request invalidated or regenerated (resurrection).
    """
    if current is None or current.tombstone:
        return WriteResult.GONE, None
    merged = changes.apply(current)
    if merged.is_empty():
        return WriteResult.DELETED, None
    return WriteResult.WRITTEN, merged


_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_session_id() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass
class ServerState:
    sent: bool
    session_id: str | None = None
    #: Storage key the record was found under (a hash of the id).
    key: str | None = None
    #: Opaque token from ``read`` for optimistic updates (memcache's cas).
    version: Any = None
    issued: int | None = None
    #: The id was retired by ``regenerate_id()``: never save, never set a cookie.
    retired: bool = False
    #: Found under a secret other than the current one: move it on save, or
    #: it would be lost when that secret is retired.
    stale_key: bool = False


class ServerBackend(Backend):
    """Keeps a signed random id in the cookie and the data on a server.

    Subclasses implement the five storage calls below, each in one round
    trip, and set :attr:`address` for error messages.
    """

    #: Where the server is, for :class:`~tipsessions.BackendUnavailable`.
    address: str = "(in process)"

    @abstractmethod
    def read(self, key: str) -> tuple[Record | None, Any]:
        """The record (or tombstone) under ``key`` and a version token, or ``(None, None)``."""

    @abstractmethod
    def put(self, key: str, record: Record, ttl: int) -> None:
        """Store ``record`` whole under ``key`` for ``ttl`` seconds, replacing anything."""

    @abstractmethod
    def update(self, key: str, changes: ChangeSet, ttl: int, version: Any) -> WriteResult:
        """Atomically merge ``changes`` into the *current* record under ``key``.

        Follow :func:`apply_changes`; retry a lost race a bounded number of
        times, then raise :class:`~tipsessions.SessionConflict`.
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

    # -- shared logic ---------------------------------------------------------

    def log_undecodable(self, where: str, reason: str) -> None:
        """Log a stored record that does not decode; the caller treats it as missing."""
        # Never the content: it may hold another user's data.
        security_log.warning(
            "%s backend: undecodable record %s treated as missing (%s)", self.name, where, reason
        )

    def storage_keys(self, session_id: str) -> list[str]:
        prefix = str(self.options.get("prefix", ""))
        return [prefix + digest for digest in self.keyring.id_hashes(session_id)]

    def idle_window(self, lifetime: Lifetime) -> int:
        windows = [w for w in (lifetime.idle or lifetime.server_ttl, lifetime.cookie_max_age) if w]
        return min(windows)

    def ttl(self, lifetime: Lifetime, created: int, now: int) -> int:
        ttl = lifetime.idle or lifetime.server_ttl
        if lifetime.absolute is not None:
            ttl = min(ttl, created + lifetime.absolute - now)
        return max(ttl, 1)

    def load(self, cookie_name: str, cookie_value: str | None, lifetime: Lifetime) -> Session:
        state = ServerState(sent=cookie_value is not None)
        if cookie_value is None:
            return Session(state=state)
        try:
            raw, issued = self.keyring.unsign(cookie_name, cookie_value, self.idle_window(lifetime))
            session_id = raw.decode("ascii")
        except (BadCookie, UnicodeDecodeError) as error:
            log_rejected(self.name, cookie_name, str(error))
            return Session(state=state)
        if not _SESSION_ID.match(session_id):
            log_rejected(self.name, cookie_name, "malformed session id")
            return Session(state=state)
        # Keys after the first exist only while secrets rotate.
        keys = self.storage_keys(session_id)
        for key in keys:
            record, version = self.read(key)
            if record is not None:
                break
        else:
            return Session(state=state)
        state.stale_key = key != keys[0]
        if record.tombstone:
            state.retired = True
            return Session(state=state)
        if lifetime.outlived(record.created, int(time.time())):
            return Session(state=state)
        state.session_id, state.key, state.version, state.issued = session_id, key, version, issued
        return Session(record, new=False, state=state)

    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        state: ServerState = session.state
        if state.retired:
            return None
        now = int(time.time())
        if session.invalidated and state.key is not None:
            self.delete(state.key)
            state.session_id = state.key = None
        if state.key is None:
            return self._create(cookie_name, session, lifetime, now)
        if session.regenerate_requested or state.stale_key:
            return self._regenerate(cookie_name, session, lifetime, now)
        changes = session.changes()
        ttl = self.ttl(lifetime, session.created, now)
        refresh = lifetime.refresh_due(state.issued, now, self.idle_window(lifetime))
        if changes:
            result = self.update(state.key, changes, ttl, state.version)
            if result is WriteResult.GONE:
                # Invalidated or regenerated by a concurrent request: its
                # outcome stands, and this response must not undo its cookie.
                state.retired = True
                return None
            if result is WriteResult.DELETED:
                state.session_id = state.key = None
                return CookieUpdate(None)
        elif refresh and not self.touch(state.key, ttl):
            # Ended by a concurrent request: re-issuing the old id's cookie
            # would overwrite the one that request set.
            state.retired = True
            return None
        if refresh:
            return self._issue(cookie_name, state, now)
        return None

    def _create(
        self, cookie_name: str, session: Session, lifetime: Lifetime, now: int
    ) -> CookieUpdate | None:
        state: ServerState = session.state
        record = session.to_record()
        if record.is_empty():
            return CookieUpdate(None) if session.invalidated and state.sent else None
        state.session_id = new_session_id()
        state.key = self.storage_keys(state.session_id)[0]
        self.put(state.key, record, self.ttl(lifetime, record.created, now))
        return self._issue(cookie_name, state, now)

    def _regenerate(
        self, cookie_name: str, session: Session, lifetime: Lifetime, now: int
    ) -> CookieUpdate | None:
        state: ServerState = session.state
        old_key = state.key
        assert old_key is not None
        state.session_id = state.key = None
        state.stale_key = False
        update = self._create(cookie_name, session, lifetime, now)
        if lifetime.regenerate_grace:
            self.put(old_key, Record(tombstone=True), lifetime.regenerate_grace)
        else:
            self.delete(old_key)
        return update if update is not None else CookieUpdate(None)

    def _issue(self, cookie_name: str, state: ServerState, now: int) -> CookieUpdate:
        assert state.session_id is not None
        state.sent, state.issued = True, now
        return CookieUpdate(
            self.keyring.sign(cookie_name, state.session_id.encode(), compress=False)
        )
