"""The session object handlers use: a dict that knows what changed.

What makes it more than a dict lives beside it: change tracking
(:mod:`tipsessions.tracking`), flashes (:mod:`tipsessions.flashes`) and the
guard on attributes (:mod:`tipsessions.attributes`). Here are the session's
lifecycle requests, ``regenerate_id()`` and ``invalidate()``, which the
backend carries out when the session is saved, its lifetime and user, and
what the backend reads when saving.
"""

from __future__ import annotations

import time
from typing import Any

from .attributes import StrictAttributes
from .binding import Binding
from .errors import ConfigError
from .flashes import Flashes
from .json_values import check_json
from .record import BROWSER_SESSION, ChangeSet, Record
from .tracking import TrackedDict


class Session(StrictAttributes, Flashes, TrackedDict):
    """One named session of a request.

    ``new`` is True when no valid stored session came with the request.
    The store builds it from the record its backend loaded; it holds no
    backend state.
    """

    # The public attributes: assigning any other raises AttributeError
    # (see tipsessions.attributes).
    new: bool
    created: float
    regenerate_requested: bool
    invalidated: bool
    _max_age: int | None
    _degraded: bool
    _max_age_changed: bool
    _forced: bool
    #: The user bound with ``set_user()``, and whether this request changed it.
    _binding: Binding | None
    _binding_changed: bool
    #: Set by the store when ``users`` is configured: what ``set_user()`` calls.
    _users: Any = None

    def __init__(self, record: Record | None = None, *, new: bool = True, degraded: bool = False):
        record = record if record is not None else Record(created=time.time())
        dict.__init__(self, record.data)
        # One update, not a dozen guarded assignments: this runs per session load.
        self.__dict__.update(
            new=new,
            created=record.created,
            _max_age=record.max_age,
            _degraded=degraded,
            _max_age_changed=False,
            _forced=False,
            _flashes={key: list(entries) for key, entries in record.flashes.items()},
            _transient={},
            regenerate_requested=False,
            invalidated=False,
            _loaded_keys=set(record.data),
            _pristine={},
            _touched=set(),
            _flashes_added={},
            _flashes_read={},
            _binding=record.user,
            _binding_changed=False,
        )

    @property
    def max_age(self) -> int | None:
        """The lifetime chosen with :meth:`set_max_age`; ``None`` follows the configuration."""
        return self._max_age

    @property
    def degraded(self) -> bool:
        """True when the backend failed and ``on_backend_error`` is "degrade".

        The session was served empty instead of failing the request, and it
        will not be saved: a handler can tell the visitor to try again
        rather than act as if they were signed out.
        """
        return self._degraded

    def regenerate_id(self) -> None:
        """Move this session to a new id when saved; call it at login.

        The old id then reaches nothing, so an id an attacker planted before
        login (session fixation) is worthless after it.
        """
        self.regenerate_requested = True

    def invalidate(self) -> None:
        """Empty the session, delete it from its backend, expire its cookie.

        Anything stored afterwards in the same request starts a new session.
        """
        dict.clear(self)
        self._flashes.clear()
        self._transient.clear()
        self.invalidated = True
        self.regenerate_requested = False
        self.new = True
        self.created = time.time()
        self._max_age = None
        self._max_age_changed = False
        self._binding = None
        self._binding_changed = False
        self._flashes_added = {}
        self._flashes_read = {}
        self._mark_clean()

    def set_max_age(self, seconds: int | None) -> None:
        """Choose how long this session lives, from this request on ("remember me").

        ``seconds`` sets the cookie's Max-Age, the idle window and the
        server-side expiry together; ``None`` makes the cookie end when the
        browser closes. The choice is stored with the session, so it holds
        on later requests too.
        """
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1
        ):
            raise ValueError(f"set_max_age() takes whole seconds (1 or more) or None: {seconds!r}")
        self._max_age = BROWSER_SESSION if seconds is None else seconds
        self._max_age_changed = True

    def set_user(self, user_id: str | None, *, label: str | None = None) -> None:
        """Bind this session to a user, so that it can be listed and revoked.

        Call it at sign-in, after :meth:`regenerate_id`. ``user_id`` is a
        non-empty string; ``None`` unbinds the session. ``label`` names the
        device on a "your devices" page (a browser and its system, say).
        Needs the ``users`` setting (see "Signing out everywhere" in the docs).
        """
        if self._users is None:
            raise ConfigError(
                "tipsessions.users",
                'set_user() needs the user registry: configure "users": '
                '{"backend": "redis", "check_interval": 5} (any server-side backend)',
            )
        self._binding = self._users.bind(user_id, label)
        self._binding_changed = True

    @property
    def user_id(self) -> str | None:
        """The user this session is bound to with :meth:`set_user`, or ``None``."""
        return None if self._binding is None else self._binding.user_id

    @property
    def modified(self) -> bool:
        """True once anything was changed, nested values included.

        Set it to True to save the session even though nothing seems to have
        changed.
        """
        if (
            self._forced
            or self._touched
            or self._flashes_added
            or self._flashes_read
            or self._max_age_changed
            or self._binding_changed
            or self.regenerate_requested
            or self.invalidated
        ):
            return True
        # Only values handed out can have changed in place; most requests
        # handed out none, and then nothing is compared at all.
        return any(self._changed_since_load(key, dict.get(self, key)) for key in self._pristine)

    @modified.setter
    def modified(self, value: bool) -> None:
        self._forced = bool(value)

    def changes(self) -> ChangeSet:
        """This request's changes since load (or the last save)."""
        changed: dict[str, Any] = {}
        # Keys come and go only through tracked methods, and values change in
        # place only once handed out: with neither, there is nothing to compare.
        if self._touched or self._pristine:
            changed = {
                key: value
                for key, value in dict.items(self)
                if self._changed_since_load(key, value)
            }
        for key, value in changed.items():
            # Nested values can have been mutated into non-JSON after assignment.
            check_json(key, value)
        deleted = (self._loaded_keys | self._touched) - dict.keys(self)
        if self._forced and not changed and not deleted:
            # Written back as it is: a save the handler asked for.
            changed = dict(dict.items(self))
        return ChangeSet(
            updates=changed,
            deleted=deleted,
            flashes_added={k: list(v) for k, v in self._flashes_added.items()},
            flashes_read={k: set(v) for k, v in self._flashes_read.items()},
            max_age=self.max_age if self._max_age_changed else None,
            user_changed=self._binding_changed,
            user=self._binding,
        )

    def to_record(self) -> Record:
        """The full current state, for backends that store it whole."""
        # Values loaded and never touched nor handed out are JSON as loaded.
        for key in (self._touched | self._pristine.keys()) & dict.keys(self):
            check_json(key, dict.__getitem__(self, key))
        flashes = {key: list(entries) for key, entries in self._flashes.items() if entries}
        return Record(
            data=dict(dict.items(self)),
            flashes=flashes,
            created=self.created,
            max_age=self.max_age,
            user=self._binding,
        )

    def saved(self) -> None:
        """Called by the store after a save: the next save starts from here."""
        self._mark_clean()
        self.__dict__.update(
            new=False,
            regenerate_requested=False,
            invalidated=False,
            _max_age_changed=False,
            _binding_changed=False,
            _forced=False,
            _flashes_added={},
            _flashes_read={},
        )
