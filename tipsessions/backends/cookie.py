"""Cookie backends: the whole session in the cookie, the client holds the data.

Such sessions cannot be revoked on the server and cannot merge concurrent
requests: the last response a browser receives wins.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SessionTooLarge
from ..record import Record
from .base import (
    EXPIRE_COOKIE,
    KEEP_COOKIE,
    MAX_COOKIE_BYTES,
    Backend,
    Lifetime,
    Loaded,
    Pending,
    SaveResult,
    expired,
    genuine,
    log_rejected,
    set_cookie,
)


@dataclass
class CookieHandle:
    """A cookie session's bookkeeping: was a cookie sent, and when was it issued."""

    sent: bool
    issued: float | None = None


class CookieBackend(Backend):
    """Keeps the whole session in its cookie; a subclass seals and opens values."""

    @abstractmethod
    def seal(self, cookie_name: str, payload: bytes) -> str:
        """The cookie value carrying ``payload``."""

    @abstractmethod
    def open(self, cookie_name: str, value: str) -> tuple[bytes, float, bool]:
        """``(payload, issued at, sealed with the current secret)``.

        Raises :class:`~tipsessions.cookies.BadCookie` when the value is not
        genuine; its age is the caller's to judge.
        """

    def load(self, cookie_name: str, cookie_values: Sequence[str], lifetime: Lifetime) -> Loaded:
        handle = CookieHandle(sent=bool(cookie_values))
        for payload, issued, _ in genuine(self.name, cookie_name, cookie_values, self.open):
            try:
                record = Record.from_json(payload)
            except ValueError as error:
                reason = str(error)
            else:
                reason = "not a session" if record.tombstone else ""
                reason = reason or expired(lifetime.chosen(record.max_age), record.created, issued)
                if not reason:
                    handle.issued = issued
                    return Loaded(record, handle)
            log_rejected(self.name, cookie_name, reason)
        return Loaded(None, handle)

    def save(
        self, cookie_name: str, handle: Any, pending: Pending, lifetime: Lifetime
    ) -> SaveResult:
        assert isinstance(handle, CookieHandle)
        now = time.time()
        lifetime = lifetime.chosen(pending.max_age)
        windows = [w for w in (lifetime.idle, lifetime.cookie_max_age) if w]
        if not pending.modified and not lifetime.refresh_due(
            handle.issued, now, min(windows, default=None)
        ):
            return KEEP_COOKIE
        record = pending.to_record()
        if record.is_empty():
            handle.issued = None
            return EXPIRE_COOKIE if handle.sent else KEEP_COOKIE
        value = self.seal(cookie_name, record.to_json())
        size = len(cookie_name) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(cookie_name, size, MAX_COOKIE_BYTES)
        handle.sent, handle.issued = True, now
        return set_cookie(value)
