"""Sessions bound to users: what the store asks of the registry around a request.

The store calls in at two points, and only when ``users`` is configured:

* when it opens a session (:func:`admitted`, inside the backend error
  handling, then :func:`attach`): a session bound to a user is admitted only
  if the registry still lists it under a current epoch, otherwise it reads
  as new and its cookie is expired;
* after it saved one (:func:`after_save`): a new binding is written to the
  registry, an ended one removed, a moved server-side session re-keyed, and
  a session in use reports that it was seen.

An unbound session costs none of this: no registry call, no extra byte.
The registry itself is :mod:`tipsessions.registry`; listing and revoking a
user's sessions, :mod:`tipsessions.signout`.
"""

from __future__ import annotations

import logging
import time

from .backends.base import Backend, Loaded, SaveResult
from .backends.server import ServerBackend
from .binding import Binding, check_user_id, new_fingerprint
from .config import Settings
from .errors import BackendUnavailable, SessionConflict
from .opened import Opened
from .registry import Registry
from .user_record import Entry

log = logging.getLogger("tipsessions")
security_log = logging.getLogger("tipsessions.security")

#: Longest device label kept in the registry.
MAX_LABEL = 200


class Binder:
    """The registry side of one open session: what ``set_user()`` calls."""

    __slots__ = ("key", "label", "loaded", "name", "opened", "registry", "settings")

    def __init__(self, registry: Registry, settings: Settings, name: str, opened: Opened) -> None:
        self.registry, self.settings, self.name, self.opened = registry, settings, name, opened
        #: The binding as stored, and the storage key the registry knows it under.
        self.loaded: Binding | None = opened.session._binding
        self.key = opened.storage_key()
        self.label: str | None = None

    def bind(self, user_id: str | None, label: str | None) -> Binding | None:
        if user_id is None:
            return None
        check_user_id(user_id)
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
            raise ValueError(f"a device label is a string of at most {MAX_LABEL} characters")
        self.label = label
        opened = self.opened
        if opened.degraded:
            return Binding(user_id, 0, new_fingerprint())
        try:
            known = self.registry.fetch(user_id)
        except (BackendUnavailable, SessionConflict) as error:
            if self.settings.on_backend_error != "degrade":
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


def attach(
    registry: Registry, settings: Settings, name: str, opened: Opened, revoked: bool
) -> None:
    """Give an opened session its registry side; end it first if it was ``revoked``."""
    if revoked:
        # Empty, and saved as such: the record is deleted and the cookie expired.
        opened.session.invalidate()
    opened.session._users = Binder(registry, settings, name, opened)


def _until(opened: Opened, now: float, slack: int) -> float | None:
    """When the session ends if it is not used again, with ``slack`` for late reports."""
    session = opened.session
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


def after_save(opened: Opened, result: SaveResult) -> None:
    """Tell the registry what this request did to a session's binding."""
    session = opened.session
    binder: Binder = session._users
    new, old = session._binding, binder.loaded
    if new is None and old is None:
        return
    registry = binder.registry
    key = opened.storage_key()
    if (
        old is not None
        and new is old
        and key == binder.key
        and not registry.report_due(old.fingerprint)
    ):
        # Most requests: the same binding, in the same record, reported lately.
        return
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
            until = _until(opened, now, registry.report_interval)
            if old is None or new.fingerprint != old.fingerprint:
                entry = Entry(
                    new.fingerprint,
                    binder.name,
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
        if binder.settings.on_backend_error != "degrade":
            raise
        log.error("%s; the user registry was not told about the %r session", error, binder.name)
    binder.loaded, binder.key = new, key
