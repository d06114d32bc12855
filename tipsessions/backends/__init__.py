"""The interface for writing a backend.

Subclass :class:`RecordBackend` for a store of whole records (a few raw
storage calls), :class:`ServerBackend` when the store can merge a change
set itself, or :class:`CookieBackend` to keep the session in the cookie.
See the "Writing your own backend" page of the documentation, and
:mod:`tipsessions.testing` for the conformance suite every backend passes.
"""

from .base import (
    EXPIRE_COOKIE,
    KEEP_COOKIE,
    Backend,
    Lifetime,
    Loaded,
    Pending,
    Purgeable,
    SaveResult,
    WriteResult,
    apply_changes,
    set_cookie,
)
from .cookie import CookieBackend, CookieHandle
from .options import BackendOptions
from .records import LostRace, RecordBackend
from .server import ServerBackend, ServerHandle

__all__ = [
    "EXPIRE_COOKIE",
    "KEEP_COOKIE",
    "Backend",
    "BackendOptions",
    "CookieBackend",
    "CookieHandle",
    "Lifetime",
    "Loaded",
    "LostRace",
    "Pending",
    "Purgeable",
    "RecordBackend",
    "SaveResult",
    "ServerBackend",
    "ServerHandle",
    "WriteResult",
    "apply_changes",
    "set_cookie",
]
