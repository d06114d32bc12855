"""The backend interface, and what every backend shares.

A backend turns the values a request sent under a cookie name into a
:class:`~tipsessions.record.Record` (:meth:`Backend.load`), and what a
request did to its session into a :class:`SaveResult` for the cookie
(:meth:`Backend.save`). It never sees the :class:`~tipsessions.Session`
itself: the store builds that from the record, keeps the opaque handle
``load`` returned, and hands both back at save time. Three bases do the
work once:

* :class:`~tipsessions.backends.cookie.CookieBackend` keeps the whole
  session in the cookie; a subclass only seals and opens the value.
* :class:`~tipsessions.backends.server.ServerBackend` keeps a signed random
  id in the cookie and the record on a server, through five record calls.
* :class:`~tipsessions.backends.records.RecordBackend` implements those
  five calls on raw storage: get, set and delete bytes inside an atomic
  scope per key.
"""

from __future__ import annotations

import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..cookies import BadCookie, Keyring
from ..record import BROWSER_SESSION, ChangeSet, Record
from .options import BackendOptions

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


@dataclass(frozen=True)
class SaveResult:
    """What a save asks of the session's cookie: nothing, a new value, or expiry."""

    #: The new cookie value, when one is to be set.
    value: str | None = None
    #: True to expire the cookie.
    expire: bool = False

    @property
    def changes_cookie(self) -> bool:
        return self.expire or self.value is not None


#: The cookie stays as the browser has it.
KEEP_COOKIE = SaveResult()
#: The cookie is expired: the session ended or became empty.
EXPIRE_COOKIE = SaveResult(expire=True)


def set_cookie(value: str) -> SaveResult:
    """The cookie is set to ``value``."""
    return SaveResult(value=value)


@dataclass(frozen=True)
class Loaded:
    """What :meth:`Backend.load` found: a live record, or ``None`` for a new session."""

    record: Record | None
    #: The backend's own bookkeeping for this session, handed back to ``save``.
    handle: Any


class Pending(Protocol):
    """A request's session as a backend sees it when saving.

    :class:`~tipsessions.Session` is one; a backend reads it and never
    changes it.
    """

    @property
    def modified(self) -> bool: ...

    @property
    def max_age(self) -> int | None: ...

    invalidated: bool
    regenerate_requested: bool
    created: float

    def changes(self) -> ChangeSet: ...

    def to_record(self) -> Record: ...


class Backend(ABC):
    """A session storage. One instance per application, shared by its threads.

    ``options`` is the backend's own section of the configuration (for
    example ``config["tipsessions"]["redis"]``), which becomes an instance
    of :attr:`options_class`, checked and with its defaults filled in.
    """

    #: The options this backend takes; the base takes any keys, unchecked.
    options_class: ClassVar[type[BackendOptions]] = BackendOptions

    def __init__(self, name: str, options: Mapping[str, Any], keyring: Keyring) -> None:
        self.name = name
        self.options = self.options_class.parse(f"tipsessions.{name}", options)
        self.keyring = keyring

    @abstractmethod
    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Loaded:
        """The record for the values a request sent under ``cookie_name``.

        The most recently issued genuine value wins. A bad, expired or
        unknown value is not an error: it gives ``Loaded(None, handle)``, a
        new session.
        """

    @abstractmethod
    def save(
        self, cookie_name: str, handle: Any, pending: Pending, lifetime: Lifetime
    ) -> SaveResult:
        """Store what the request changed; say what happens to the cookie."""

    def fingerprint(self, handle: Any) -> str | None:
        """A short, harmless mark of the stored session behind ``handle``, if it has one."""
        return None


@runtime_checkable
class Purgeable(Protocol):
    """A backend that keeps expired records until told to delete them.

    ``python -m tipsessions purge`` works with any backend that has these
    two methods.
    """

    def count_expired(self, before: float) -> int | None:
        """How many records had expired at ``before`` (a timestamp), or ``None``."""

    def purge_expired(self, before: float, batch_size: int) -> Iterator[int]:
        """Delete the records expired at ``before``, yielding each batch's count."""


class WriteResult(enum.Enum):
    """The outcome of a merge into a stored record."""

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


def log_rejected(backend: str, cookie_name: str, reason: str) -> None:
    # The value is never logged: it may be a valid credential of someone else.
    security_log.warning(
        "rejected the %r cookie of the %s backend (%s); starting a new session",
        cookie_name,
        backend,
        reason,
    )


def log_undecodable(backend: str, where: str, reason: str) -> None:
    """Log a stored record that does not decode; the caller treats it as missing."""
    # Never the content: it may hold another user's data.
    security_log.warning(
        "%s backend: undecodable record %s treated as missing (%s)", backend, where, reason
    )


Opener = Callable[[str, str], tuple[bytes, float, bool]]


def genuine(
    backend: str, cookie_name: str, cookie_values: Sequence[str], open_value: Opener
) -> list[tuple[bytes, float, bool]]:
    """The values that verify, as ``(payload, issued, current key)``, newest first.

    A name sent twice (cookies of a parent domain or another path) is
    settled by issue time, never by header order alone: browsers send the
    older of two equal-path cookies first, and a stale one must not win. Of
    two issued in the same millisecond, the later in the header is the newer.
    """
    found = []
    for value in cookie_values:
        try:
            found.append(open_value(cookie_name, value))
        except BadCookie as error:
            log_rejected(backend, cookie_name, str(error))
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
