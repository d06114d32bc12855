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
import hashlib
import logging
import math
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

from ..cookies import BadCookie, Keyring
from ..errors import SessionTooLarge
from ..legacy import LegacyCookies
from ..record import BROWSER_SESSION, ChangeSet, Record
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

    def chosen(self, max_age: int | None) -> Lifetime:
        """This lifetime with a session's own ``set_max_age()`` choice applied."""
        return self if max_age is None else _chosen(self, max_age)

    def outlived(self, created: float, now: float) -> bool:
        """True once the absolute lifetime is over; activity never extends it."""
        return self.absolute is not None and now - created >= self.absolute

    def refresh_due(self, issued: float | None, now: float, window: int | None) -> bool:
        """Whether a read-only request should re-issue the cookie now.

        Throttled to ``refresh_interval`` but at least ten times per
        ``window``, so a session in use never lapses for want of a refresh.
        """
        if issued is None or window is None:
            return False
        return now - issued >= min(self.refresh_interval, window / 10)


@lru_cache(maxsize=64)
def _chosen(lifetime: Lifetime, max_age: int) -> Lifetime:
    if max_age == BROWSER_SESSION:
        return replace(lifetime, cookie_max_age=None)
    return replace(lifetime, idle=max_age, cookie_max_age=max_age)


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

    #: Set when ``legacy_cookies`` is configured: adopts the session cookies
    #: of the libraries tipsessions replaces, once each (see tipsessions.legacy).
    legacy: LegacyCookies | None = None

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        self.name = name
        self.options = options
        self.keyring = keyring

    @abstractmethod
    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Session:
        """The session for the values a request sent under ``cookie_name``.

        Values are tried in order and the first genuine one wins. A bad,
        expired or unknown value is not an error: it gives a new, empty
        session.
        """

    @abstractmethod
    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        """Store what changed; return the cookie update, or ``None`` for none."""


@dataclass
class CookieState:
    sent: bool
    issued: float | None = None


class CookieBackend(Backend):
    """Keeps the whole session in its cookie; the client holds the data.

    Such sessions cannot be revoked on the server and cannot merge
    concurrent requests: the last response a browser receives wins.
    """

    @abstractmethod
    def seal(self, cookie_name: str, payload: bytes) -> str:
        """The cookie value carrying ``payload``."""

    @abstractmethod
    def open(self, cookie_name: str, value: str, max_age: float | None) -> tuple[bytes, float]:
        """``(payload, issued_at)``; raises ``BadCookie`` when not genuine or too old.

        ``max_age`` is in seconds; ``None`` leaves the age to the caller.
        """

    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Session:
        state = CookieState(sent=bool(cookie_values))
        for payload, issued in genuine(self, cookie_name, cookie_values, self.open):
            try:
                record = Record.from_json(payload)
            except ValueError as error:
                reason = str(error)
            else:
                reason = "not a session" if record.tombstone else ""
                reason = reason or expired(lifetime.chosen(record.max_age), record.created, issued)
                if not reason:
                    state.issued = issued
                    return Session(record, new=False, state=state)
            log_rejected(self.name, cookie_name, reason)
        if self.legacy is not None and cookie_values:
            adopted = self.legacy.adopt(self.name, cookie_name, cookie_values, lifetime, state)
            if adopted is not None:
                return adopted
        return Session(state=state)

    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        state: CookieState = session.state
        now = time.time()
        lifetime = lifetime.chosen(session.max_age)
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
        size = len(cookie_name) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(cookie_name, size, MAX_COOKIE_BYTES)
        state.sent, state.issued = True, now
        return CookieUpdate(value)


def genuine(
    backend: Backend,
    cookie_name: str,
    cookie_values: Sequence[str],
    open_value: Callable[[str, str, float | None], tuple[bytes, float]],
) -> list[tuple[bytes, float]]:
    """The values that verify, as ``(payload, issued)``, the most recently issued first.

    A name sent twice (cookies of a parent domain or another path) is
    settled by issue time, never by header order alone: browsers send the
    older of two equal-path cookies first, and a stale one must not win. Of
    two issued in the same millisecond, the later in the header is the newer.
    """
    found = []
    for value in cookie_values:
        try:
            found.append(open_value(cookie_name, value, None))
        except BadCookie as error:
            if backend.legacy is None or "|" not in value:  # else legacy.adopt() decides
                log_rejected(backend.name, cookie_name, str(error))
    if len(found) > 1:
        found.reverse()  # a stable sort then keeps the later of equal times first
        found.sort(key=lambda opened: opened[1], reverse=True)
    return found


def expired(lifetime: Lifetime, created: float, issued: float) -> str:
    """Why a session issued at ``issued`` is over now, or ``""`` while it lives."""
    now = time.time()
    if lifetime.idle is not None and now - issued >= lifetime.idle:
        return "expired"
    if lifetime.outlived(created, now):
        return "past its absolute lifetime"
    return ""


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


def storage_digest(session_id: str) -> str:
    """What a session's record is stored under: a digest of its id, never the id.

    A dump of the backend then holds nothing that can be replayed as a
    cookie, since the digest does not give back 256 random bits. It depends
    on no secret: every process finds a record under the same key whatever
    secrets it holds, so rotating secrets moves no record.
    """
    return hashlib.sha256(b"tipsessions session id:" + session_id.encode("ascii")).hexdigest()


_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


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
    issued: float | None = None
    #: The id was retired by ``regenerate_id()``: never save, never set a cookie.
    retired: bool = False
    #: The cookie verified with an older secret: sign it again with the
    #: current one, or the session would end when that secret is retired.
    resign: bool = False


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

    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Session:
        state = ServerState(sent=bool(cookie_values))
        older: set[bytes] = set()

        def unsign(name: str, value: str, max_age: float | None) -> tuple[bytes, float]:
            opened = self.keyring.unsign(name, value, max_age)
            if not self.keyring.signed_by_current(name, value):
                older.add(opened[0])
            return opened

        for raw, issued in genuine(self, cookie_name, cookie_values, unsign):
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
                state.retired = True
                return Session(state=state)
            reason = expired(lifetime.chosen(record.max_age), record.created, issued)
            if reason:
                log_rejected(self.name, cookie_name, reason)
                continue
            state.resign = raw in older
            state.session_id, state.key, state.version = session_id, key, version
            state.issued = issued
            return Session(record, new=False, state=state)
        if self.legacy is not None and cookie_values:
            adopted = self.legacy.adopt(self.name, cookie_name, cookie_values, lifetime, state)
            if adopted is not None:
                return adopted
        return Session(state=state)

    def save(self, cookie_name: str, session: Session, lifetime: Lifetime) -> CookieUpdate | None:
        state: ServerState = session.state
        if state.retired:
            return None
        now = time.time()
        lifetime = lifetime.chosen(session.max_age)
        if session.invalidated and state.key is not None:
            self.delete(state.key)
            state.session_id = state.key = None
        if state.key is None:
            return self._create(cookie_name, session, lifetime, now)
        if session.regenerate_requested:
            return self._regenerate(cookie_name, session, lifetime, now)
        changes = session.changes() if session.modified else ChangeSet()
        ttl = self.ttl(lifetime, session.created, now)
        window = self.idle_window(lifetime)
        refresh = state.resign or lifetime.refresh_due(state.issued, now, window)
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
        if refresh or changes.max_age is not None:
            # A new lifetime changes the cookie's Max-Age too.
            return self._issue(cookie_name, state, now)
        return None

    def _create(
        self, cookie_name: str, session: Session, lifetime: Lifetime, now: float
    ) -> CookieUpdate | None:
        state: ServerState = session.state
        record = session.to_record()
        if record.is_empty():
            return CookieUpdate(None) if session.invalidated and state.sent else None
        ttl = self.ttl(lifetime, record.created, now)
        state.session_id, state.key = self.place_new(record, ttl)
        return self._issue(cookie_name, state, now)

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

    def _regenerate(
        self, cookie_name: str, session: Session, lifetime: Lifetime, now: float
    ) -> CookieUpdate | None:
        state: ServerState = session.state
        old_key = state.key
        assert old_key is not None
        state.session_id = state.key = None
        update = self._create(cookie_name, session, lifetime, now)
        if lifetime.regenerate_grace:
            self.put(old_key, Record(tombstone=True), lifetime.regenerate_grace)
        else:
            self.delete(old_key)
        return update if update is not None else CookieUpdate(None)

    def _issue(self, cookie_name: str, state: ServerState, now: float) -> CookieUpdate:
        assert state.session_id is not None
        state.sent, state.issued = True, now
        return CookieUpdate(
            self.keyring.sign(cookie_name, state.session_id.encode(), compress=False)
        )
