"""What the store keeps of each session it opened, from load to save."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backends.base import Backend, Lifetime
from .backends.server import ServerHandle
from .record import BROWSER_SESSION
from .session import Session


@dataclass
class Opened:
    """One open session of a request, with its backend and its cookie's attributes."""

    session: Session
    backend: Backend
    #: The backend's bookkeeping for this session, from ``load`` to ``save``.
    handle: Any
    lifetime: Lifetime
    cookie_args: Mapping[str, Any]
    #: The backend failed and ``on_backend_error`` is "degrade": never save.
    degraded: bool = False
    #: Read from a cookie of the libraries tipsessions replaces: the backend
    #: never saw that cookie, so the store expires it if the session ends empty.
    adopted: bool = False

    def session_cookie_args(self) -> Mapping[str, Any]:
        """The cookie attributes of the session, with its own ``set_max_age()`` choice."""
        max_age = self.session.max_age
        if max_age is None:
            return self.cookie_args
        return {**self.cookie_args, "max_age": None if max_age == BROWSER_SESSION else max_age}

    def storage_key(self) -> str | None:
        """The storage key of a stored server-side session; ``None`` for a cookie session.

        ``None`` too for one that a concurrent request ended while this one saved.
        """
        handle = self.handle
        if not isinstance(handle, ServerHandle) or handle.retired:
            return None
        return handle.key
