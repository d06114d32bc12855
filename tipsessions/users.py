"""Sessions bound to users: the checks and reports around each request.

The store calls in at three points, and only when ``users`` is configured:

* when it opens a session (:func:`admitted`, inside the backend error
  handling, then :func:`attach`): a session bound to a user is admitted only
  if the registry still lists it under a current epoch, otherwise it reads
  as new and its cookie is expired;
* after it saved one (:func:`after_save`): a new binding is written to the
  registry, an ended one removed, a moved server-side session re-keyed, and
  a session in use reports that it was seen;
* for ``user_sessions()``, ``revoke_user()`` and ``revoke_session()``.

An unbound session costs none of this: no registry call, no extra byte.
The registry itself is :mod:`tipsessions.registry`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .backends.base import Backend, Loaded, SaveResult
from .backends.server import ServerBackend, ServerHandle
from .binding import Binding, check_user_id, is_fingerprint, new_fingerprint
from .config import Settings
from .errors import BackendUnavailable, ConfigError, SessionConflict, SessionError
from .record import ChangeSet
from .registry import Entry, Registry
from .session import Session

if TYPE_CHECKING:
    from .store import SessionStore, _Opened

log = logging.getLogger("tipsessions")
security_log = logging.getLogger("tipsessions.security")

#: Longest device label kept in the registry.
MAX_LABEL = 200


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


def build_registry(settings: Settings, backend_of: Callable[[str], Backend]) -> Registry | None:
    """The application's registry, or ``None`` without the ``users`` setting."""
    if settings.users is None:
        return None
    backend = backend_of(settings.users.backend)
    if not isinstance(backend, ServerBackend) or backend.evicts:
        reason = (
            "it may evict entries to make room, and an evicted revocation epoch would "
            "bring revoked cookie sessions back"
            if isinstance(backend, ServerBackend)
            else "it keeps nothing on the server"
        )
        raise ConfigError(
            "tipsessions.users.backend",
            f"the {backend.name!r} backend cannot hold the user registry: {reason}",
        )
    return Registry(backend, settings.users.check_interval, settings.session_refresh_interval)


def registry_of(store: SessionStore) -> Registry:
    registry: Registry | None = store.runtime.users
    if registry is None:
        raise ConfigError(
            "tipsessions.users",
            "listing and revoking a user's sessions needs the user registry: configure "
            '"users": {"backend": "redis", "check_interval": 5} (any server-side backend)',
        )
    return registry


def storage_key_of(opened: _Opened) -> str | None:
    """The storage key of a stored server-side session; ``None`` for a cookie session.

    ``None`` too for one that a concurrent request ended while this one saved.
    """
    handle = opened.handle
    if not isinstance(handle, ServerHandle) or handle.retired:
        return None
    return handle.key


class Binder:
    """The registry side of one open session: what ``set_user()`` calls."""

    __slots__ = ("key", "label", "loaded", "name", "store")

    def __init__(self, store: SessionStore, name: str, session: Session) -> None:
        self.store, self.name = store, name
        #: The binding as stored, and the storage key the registry knows it under.
        self.loaded: Binding | None = session._binding
        self.key = storage_key_of(store._sessions[name])
        self.label: str | None = None

    def bind(self, user_id: str | None, label: str | None) -> Binding | None:
        if user_id is None:
            return None
        check_user_id(user_id)
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
            raise ValueError(f"a device label is a string of at most {MAX_LABEL} characters")
        self.label = label
        opened = self.store._sessions[self.name]
        if opened.degraded:
            return Binding(user_id, 0, new_fingerprint())
        try:
            known = registry_of(self.store).fetch(user_id)
        except (BackendUnavailable, SessionConflict) as error:
            if self.store.settings.on_backend_error != "degrade":
                raise
            log.error("%s; the %r session is not signed in and not saved", error, self.name)
            opened.degraded = opened.session._degraded = True
            return Binding(user_id, 0, new_fingerprint())
        # The epoch read before the entry is written: see tipsessions.registry.
        return Binding(user_id, known.epoch if known else 0, new_fingerprint())


def admitted(registry: Registry, loaded: Loaded, backend: Backend) -> bool:
    """Whether a loaded session may be served: False once its user signed it out.

    Raises :class:`~tipsessions.BackendUnavailable` when the registry cannot
    say; the store then applies ``on_backend_error``, so a bound session is
    never served unchecked.
    """
    binding = None if loaded.record is None else loaded.record.user
    if binding is None or registry.admits(binding):
        return True
    security_log.warning(
        "session %s of the %s backend was signed out; starting a new session",
        binding.fingerprint,
        backend.name,
    )
    return False


def attach(store: SessionStore, name: str, session: Session, revoked: bool) -> None:
    """Give an opened session its registry side; end it first if it was ``revoked``."""
    if revoked:
        # Empty, and saved as such: the record is deleted and the cookie expired.
        session.invalidate()
    session._users = Binder(store, name, session)


def _until(opened: _Opened, session: Session, now: float, slack: int) -> float | None:
    """When the session ends if it is not used again, with ``slack`` for late reports."""
    lifetime = opened.lifetime.chosen(session.max_age)
    if isinstance(opened.backend, ServerBackend):
        window: int | None = opened.backend.idle_window(lifetime)
    else:
        window = min((w for w in (lifetime.idle, lifetime.cookie_max_age) if w), default=None)
    until = None if window is None else now + window + slack
    if lifetime.absolute is not None:
        end = session.created + lifetime.absolute
        until = end if until is None else min(until, end)
    return until


def after_save(store: SessionStore, name: str, opened: _Opened, result: SaveResult) -> SaveResult:
    """Tell the registry what this request did to a session's binding."""
    session = opened.session
    binder: Binder = session._users
    new, old = session._binding, binder.loaded
    if new is None and old is None:
        return result
    registry = registry_of(store)
    key = storage_key_of(opened)
    if (
        old is not None
        and new is old
        and key == binder.key
        and not registry.report_due(old.fingerprint)
    ):
        # Most requests: the same binding, in the same record, reported lately.
        return result
    if isinstance(opened.backend, ServerBackend):
        stored = key is not None
    elif session._binding_changed:
        # The binding is in the cookie once this response carries it.
        stored = result.value is not None
    else:
        stored = True
    try:
        if old is not None and (new is None or new.fingerprint != old.fingerprint):
            registry.forget(old)
        if new is not None and stored:
            now = time.time()
            until = _until(opened, session, now, registry.report_interval)
            if old is None or new.fingerprint != old.fingerprint:
                entry = Entry(
                    new.fingerprint,
                    name,
                    opened.backend.name,
                    session.created,
                    binder.label,
                    key,
                    now,
                    until,
                )
                registry.register(new, entry)
            elif key != binder.key and key is not None:
                registry.move(new, key)
            else:
                registry.report(new, until)
    except (BackendUnavailable, SessionConflict) as error:
        if store.settings.on_backend_error != "degrade":
            raise
        log.error("%s; the user registry was not told about the %r session", error, name)
    binder.loaded, binder.key = new, key
    return result


def _bound_to(store: SessionStore, user_id: str) -> Iterator[tuple[_Opened, Binding]]:
    """This request's sessions bound to the user, with their bindings.

    The default session counts even when the handler has not opened it yet:
    it is the one "this device" means.
    """
    store.get_session()
    for opened in list(store._sessions.values()):
        binding = opened.session._binding
        if binding is not None and binding.user_id == user_id and not opened.degraded:
            yield opened, binding


def user_sessions(store: SessionStore, user_id: str) -> list[UserSession]:
    """The user's live sessions, most recently used first."""
    check_user_id(user_id)
    current = {binding.fingerprint for _, binding in _bound_to(store, user_id)}
    return list_sessions(registry_of(store), user_id, current)


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


def revoke_user(store: SessionStore, user_id: str, keep_current: bool = False) -> int:
    """End every session of the user; with ``keep_current``, all but this request's."""
    check_user_id(user_id)
    registry = registry_of(store)
    epoch = registry.next_epoch(user_id)
    kept = list(_bound_to(store, user_id)) if keep_current else []
    for opened, binding in kept:
        _restamp(opened, binding, epoch)
    registry.raise_epoch(user_id, epoch)
    removed = registry.remove(user_id, keep={binding.fingerprint for _, binding in kept})
    if not keep_current:
        for opened, _ in _bound_to(store, user_id):
            _end_here(opened)
    return end_entries(store.runtime.backend, removed)


def revoke_session(store: SessionStore, user_id: str, fingerprint: str) -> bool:
    """End one session of the user, named by its fingerprint; False if it was not live."""
    check_user_id(user_id)
    if not is_fingerprint(fingerprint):
        return False
    removed = registry_of(store).remove(user_id, [fingerprint])
    for opened, binding in _bound_to(store, user_id):
        if binding.fingerprint == fingerprint:
            _end_here(opened)
    return end_entries(store.runtime.backend, removed) > 0


def _restamp(opened: _Opened, old: Binding, epoch: int) -> None:
    """Carry this request's own session over a revocation, bound under the new epoch.

    A server-side record is rewritten before the epoch is raised, so that no
    concurrent request of the same session ever sees it bound under the old
    one; a cookie can only be re-issued with this response.
    """
    session = opened.session
    session._binding = Binding(old.user_id, epoch, old.fingerprint)
    session._binding_changed = True
    key = storage_key_of(opened)
    if key is not None and isinstance(opened.backend, ServerBackend):
        lifetime = opened.lifetime.chosen(session.max_age)
        ttl = opened.backend.ttl(lifetime, session.created, time.time())
        changes = ChangeSet(user_changed=True, user=session._binding)
        opened.backend.update(key, changes, ttl, None)


def _end_here(opened: _Opened) -> None:
    """End a revoked session of this request now: this response expires its cookie."""
    opened.session.invalidate()
    opened.session._users.loaded = None


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
