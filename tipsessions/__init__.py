"""tipsessions: sessions for webapp2's class-based handlers.

See the README and ``docs/`` for a tour; every public name is re-exported
here.
"""

from ._version import __version__ as __version__
from .admin import revoke_user, user_sessions
from .errors import (
    BackendUnavailable,
    ConfigError,
    SerializationError,
    SessionConflict,
    SessionError,
    SessionTooLarge,
)
from .handlers import BaseHandler, SessionMiddleware, SessionMixin
from .session import Session
from .signout import UserSession
from .store import SessionStore, get_store

__all__ = [
    "BackendUnavailable",
    "BaseHandler",
    "ConfigError",
    "SerializationError",
    "Session",
    "SessionConflict",
    "SessionError",
    "SessionMiddleware",
    "SessionMixin",
    "SessionStore",
    "SessionTooLarge",
    "UserSession",
    "get_store",
    "revoke_user",
    "user_sessions",
]
