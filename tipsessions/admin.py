"""Signing a user out from outside a request: admin scripts and incident response.

Built from the application's configuration dict, exactly as the application
builds its backends, so these reach the registry and the sessions the
application wrote. ``python -m tipsessions revoke --user ID`` runs
:func:`revoke_user` from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .binding import check_user_id, is_fingerprint
from .config import load_settings
from .errors import ConfigError
from .registry import Registry
from .runtime import Runtime
from .signout import UserSession, end_entries, list_sessions


def _runtime(app_config: Mapping[str, Any]) -> tuple[Runtime, Registry]:
    runtime = Runtime(load_settings(app_config))
    if runtime.users is None:
        raise ConfigError(
            "tipsessions.users",
            "is not configured: there is no user registry to revoke sessions from",
        )
    return runtime, runtime.users


def revoke_user(app_config: Mapping[str, Any], user_id: str) -> int:
    """End every session of ``user_id``; return how many were live.

    ``app_config`` is the application's configuration, the dict holding
    ``"tipsessions"``. Server-side sessions are deleted now; cookie sessions
    are refused by every app process within ``users.check_interval``
    seconds. Raises :class:`~tipsessions.ConfigError` without ``users`` and
    :class:`~tipsessions.BackendUnavailable` when the registry cannot be
    reached.
    """
    check_user_id(user_id)
    runtime, registry = _runtime(app_config)
    registry.raise_epoch(user_id, registry.next_epoch(user_id))
    return end_entries(runtime.backend, registry.remove(user_id))


def revoke_session(app_config: Mapping[str, Any], user_id: str, fingerprint: str) -> bool:
    """End one session of ``user_id``, named by its fingerprint; False if none was live."""
    check_user_id(user_id)
    runtime, registry = _runtime(app_config)
    if not is_fingerprint(fingerprint):
        return False
    return end_entries(runtime.backend, registry.remove(user_id, [fingerprint])) > 0


def user_sessions(app_config: Mapping[str, Any], user_id: str) -> list[UserSession]:
    """The live sessions of ``user_id``, most recently used first."""
    check_user_id(user_id)
    _, registry = _runtime(app_config)
    return list_sessions(registry, user_id, current=set())
