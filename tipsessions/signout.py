"""Signing out everywhere: listing a user's sessions and ending them.

``store.user_sessions()``, ``store.revoke_user()`` and
``store.revoke_session()`` run here with the request's own sessions, so
that "this device" is marked and can be kept or ended with this response;
:mod:`tipsessions.admin` runs the same from outside a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .backends.base import Backend
from .backends.server import ServerBackend
from .binding import Binding, check_user_id, is_fingerprint
from .errors import ConfigError, SessionError
from .opened import Opened
from .record import ChangeSet
from .registry import Registry
from .runtime import Runtime
from .user_record import Entry

log = logging.getLogger("tipsessions")

#: This request's open sessions, the default one opened first if it was not.
OpenSessions = Callable[[], Iterable[Opened]]


@dataclass(frozen=True)
class UserSession:
    """One of a user's live sessions, as ``store.user_sessions()`` lists it."""

    #: Names this session to :meth:`~tipsessions.SessionStore.revoke_session`;
    #: random, and no credential.
    fingerprint: str
    #: The session's cookie name.
    name: str
    backend: str
    #: What ``set_user(..., label=...)`` said about the device, if anything.
    label: str | None
    #: When the session was created and when it was last used (``time.time()``).
    created: float
    last_seen: float
    #: True for a session of the request that asked.
    current: bool


def registry_of(runtime: Runtime) -> Registry:
    registry = runtime.users
    if registry is None:
        raise ConfigError(
            "tipsessions.users",
            "listing and revoking a user's sessions needs the user registry: configure "
            '"users": {"backend": "redis", "check_interval": 5} (any server-side backend)',
        )
    return registry


def list_sessions(registry: Registry, user_id: str, current: set[str]) -> list[UserSession]:
    """The user's live sessions, read now, most recently used first."""
    known = registry.fetch(user_id)
    if known is None:
        return []
    now = time.time()
    live = [entry for entry in known.entries.values() if entry.live(now)]
    live.sort(key=lambda entry: entry.seen, reverse=True)
    return [
        UserSession(
            fingerprint=entry.fingerprint,
            name=entry.name,
            backend=entry.backend,
            label=entry.label,
            created=entry.created,
            last_seen=entry.seen,
            current=entry.fingerprint in current,
        )
        for entry in live
    ]


def end_entries(backend_of: Callable[[str], Backend], removed: Iterable[Entry]) -> int:
    """Delete the records of removed server-side sessions; count those that were live.

    A record that cannot be deleted now is refused at its session's next
    check instead, since its entry is already gone, and deleted then.
    """
    now, ended = time.time(), 0
    for entry in removed:
        ended += entry.live(now)
        if entry.key is None:
            continue
        try:
            backend = backend_of(entry.backend)
            if isinstance(backend, ServerBackend):
                backend.delete(entry.key)
        except SessionError as error:
            log.error(
                "%s; session %s is refused at its next check instead", error, entry.fingerprint
            )
    return ended


def user_sessions(runtime: Runtime, sessions: OpenSessions, user_id: str) -> list[UserSession]:
    """The user's live sessions, most recently used first."""
    check_user_id(user_id)
    current = {binding.fingerprint for _, binding in _bound_to(sessions, user_id)}
    return list_sessions(registry_of(runtime), user_id, current)


def revoke_user(
    runtime: Runtime, sessions: OpenSessions, user_id: str, keep_current: bool = False
) -> int:
    """End every session of the user; with ``keep_current``, all but this request's."""
    check_user_id(user_id)
    registry = registry_of(runtime)
    epoch = registry.next_epoch(user_id)
    kept = list(_bound_to(sessions, user_id)) if keep_current else []
    for opened, binding in kept:
        _restamp(opened, binding, epoch)
    registry.raise_epoch(user_id, epoch)
    removed = registry.remove(user_id, keep={binding.fingerprint for _, binding in kept})
    if not keep_current:
        for opened, _ in _bound_to(sessions, user_id):
            _end_here(opened)
    return end_entries(runtime.backend, removed)


def revoke_session(
    runtime: Runtime, sessions: OpenSessions, user_id: str, fingerprint: str
) -> bool:
    """End one session of the user, named by its fingerprint; False if it was not live."""
    check_user_id(user_id)
    if not is_fingerprint(fingerprint):
        return False
    removed = registry_of(runtime).remove(user_id, [fingerprint])
    for opened, binding in _bound_to(sessions, user_id):
        if binding.fingerprint == fingerprint:
            _end_here(opened)
    return end_entries(runtime.backend, removed) > 0


def _bound_to(sessions: OpenSessions, user_id: str) -> Iterator[tuple[Opened, Binding]]:
    """This request's sessions bound to the user, with their bindings.

    The default session counts even when the handler has not opened it yet:
    it is the one "this device" means.
    """
    for opened in sessions():
        binding = opened.session._binding
        if binding is not None and binding.user_id == user_id and not opened.degraded:
            yield opened, binding


def _restamp(opened: Opened, old: Binding, epoch: int) -> None:
    """Carry this request's own session over a revocation, bound under the new epoch.

    A server-side record is rewritten before the epoch is raised, so that no
    concurrent request of the same session ever sees it bound under the old
    one; a cookie can only be re-issued with this response.
    """
    session = opened.session
    session._binding = Binding(old.user_id, epoch, old.fingerprint)
    session._binding_changed = True
    key = opened.storage_key()
    if key is not None and isinstance(opened.backend, ServerBackend):
        lifetime = opened.lifetime.chosen(session.max_age)
        ttl = opened.backend.ttl(lifetime, session.created, time.time())
        changes = ChangeSet(user_changed=True, user=session._binding)
        opened.backend.update(key, changes, ttl, None)


def _end_here(opened: Opened) -> None:
    """End a revoked session of this request now: this response expires its cookie."""
    opened.session.invalidate()
    opened.session._users.loaded = None
