"""The session object handlers use: a dict that knows what changed.

Change tracking compares each list and dict with a private copy of what was
loaded, so ``session["cart"].append(3)`` is saved without the user flagging
it.
Alongside the data live flashes (read once), transient values (this request
only, never stored) and the two lifecycle requests, ``regenerate_id()`` and
``invalidate()``, which the backend carries out when the session is saved.
"""

from __future__ import annotations

import json
import time
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from .binding import Binding
from .errors import ConfigError
from .record import BROWSER_SESSION, ChangeSet, FlashEntry, Record, check_json, new_flash_id

_MISSING: Any = object()

#: What users of other frameworks reach for, and what does it here.
_HABITS = {
    "permanent": "for a session that outlives the browser, call session.set_max_age(seconds) "
    "(None: until the browser closes)",
    "set_expiry": "call session.set_max_age(seconds) (None: until the browser closes)",
    "cycle_key": "call session.regenerate_id()",
    "flush": "call session.invalidate()",
}


def _no_attribute(name: str, *, assigned: bool) -> AttributeError:
    by_key = f"session[{name!r}] = value" if assigned else f"session.get({name!r})"
    hint = _HABITS.get(name, f"session data goes by key: {by_key}")
    return AttributeError(f"Session has no attribute {name!r}; {hint}")


class Session(dict[str, Any]):
    """One named session of a request.

    ``new`` is True when no valid stored session came with the request.
    The store builds it from the record its backend loaded; it holds no
    backend state.
    """

    # The public attributes. Assigning any other raises AttributeError: a
    # typo or a habit from another framework (``session.permanent = True``)
    # would otherwise be accepted and do nothing.
    new: bool
    created: float
    regenerate_requested: bool
    invalidated: bool
    _max_age: int | None
    _degraded: bool
    _max_age_changed: bool
    _forced: bool
    _flashes: dict[str, list[FlashEntry]]
    _transient: dict[str, Any]
    _loaded_keys: set[str]
    _pristine: dict[str, Any]
    _touched: set[str]
    _flashes_added: dict[str, list[FlashEntry]]
    _flashes_read: dict[str, set[str]]
    #: The user bound with ``set_user()``, and whether this request changed it.
    _binding: Binding | None
    _binding_changed: bool
    #: Set by the store when ``users`` is configured: what ``set_user()`` calls.
    _users: Any = None

    def __init__(self, record: Record | None = None, *, new: bool = True, degraded: bool = False):
        record = record if record is not None else Record(created=time.time())
        super().__init__(record.data)
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

    def __setattr__(self, name: str, value: Any) -> None:
        # Runs for every attribute the session sets on itself: cheapest test first.
        if name in _ATTRIBUTES or name[:1] == "_" or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            raise _no_attribute(name, assigned=True)

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes that do not exist.
        if name.startswith("_"):
            raise AttributeError(name)
        raise _no_attribute(name, assigned=False)

    def _mark_clean(self) -> None:
        """Take the current contents as the baseline changes are measured from."""
        loaded = set(dict.keys(self))
        # Values handed out before are still held by the caller: copy them now.
        held = (self._pristine.keys() | self._touched) & loaded
        self.__dict__.update(
            _loaded_keys=loaded, _pristine={}, _touched=set(), _flashes_added={}, _flashes_read={}
        )
        for key in held:
            self._expose(key, dict.__getitem__(self, key))

    def _expose(self, key: str, value: Any) -> Any:
        """Remember a list or dict as JSON text before handing it out.

        Immutable values can only change through ``__setitem__``, which is
        tracked, and a list or dict can only be changed in place by someone
        holding it; so only values actually handed out are remembered, once.
        Text, not ``==``: Python calls ``1``, ``1.0`` and ``True`` equal, JSON
        does not, and a change between them must be saved.
        """
        untracked = key not in self._pristine and key not in self._touched
        if untracked and isinstance(value, (list, dict)):
            self._pristine[key] = json.dumps(value)
        return value

    # -- the dict API, tracked ----------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key in self._transient:
            return self._transient[key]
        return self._expose(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._transient:
            return self._transient[key]
        if super().__contains__(key):
            return self._expose(key, super().__getitem__(key))
        return default

    def __iter__(self) -> Iterator[str]:
        # Overriding __iter__ makes dict(session) and {**session} read values
        # through __getitem__ instead of C's direct copy, so they are tracked.
        return iter(dict.keys(self))

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        self._expose_all()
        return super().values()

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        self._expose_all()
        return super().items()

    def _expose_all(self) -> None:
        for key, value in dict.items(self):
            self._expose(key, value)

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        merged = self.copy()
        merged.update(other)
        return merged

    def __contains__(self, key: object) -> bool:
        return key in self._transient or super().__contains__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, not {type(key).__name__}")
        check_json(key, value)
        self._touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._touched.add(key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if super().__contains__(key):
            self._touched.add(key)
            return super().pop(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self._touched.add(key)
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if not super().__contains__(key):
            self[key] = default
        return self._expose(key, super().__getitem__(key))

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        pairs = other.items() if isinstance(other, Mapping) else other
        for key, value in [*pairs, *kwargs.items()]:
            self[key] = value

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        self._touched.update(self)
        super().clear()

    def copy(self) -> dict[str, Any]:
        """A plain dict of the stored data (transient values left out)."""
        self._expose_all()
        return dict(dict.items(self))

    @property
    def degraded(self) -> bool:
        """True when the backend failed and ``on_backend_error`` is "degrade".

        The session was served empty instead of failing the request, and it
        will not be saved: a handler can tell the visitor to try again
        rather than act as if they were signed out.
        """
        return self._degraded

    # -- flashes ------------------------------------------------------------

    def add_flash(self, value: Any, level: str | None = None, key: str = "_flash") -> None:
        """Queue a message to show once, typically after a redirect."""
        check_json(key, value)
        check_json(key, level)
        entry: FlashEntry = [new_flash_id(), value, level]
        self._flashes.setdefault(key, []).append(entry)
        self._flashes_added.setdefault(key, []).append(entry)

    def get_flashes(self, key: str = "_flash") -> list[tuple[Any, str | None]]:
        """Return ``(value, level)`` pairs, oldest first, and remove them."""
        entries = self._flashes.pop(key, [])
        added = self._flashes_added.get(key, [])
        for entry in entries:
            if entry in added:
                added.remove(entry)
            else:
                self._flashes_read.setdefault(key, set()).add(entry[0])
        if not added:
            self._flashes_added.pop(key, None)
        return [(entry[1], entry[2]) for entry in entries]

    # -- transient values ---------------------------------------------------

    def set_t(self, key: str, value: Any) -> None:
        """Keep a value for this request only; it is never stored."""
        self._transient[key] = value

    def get_t(self, key: str, default: Any = None) -> Any:
        return self._transient.get(key, default)

    def delete_t(self, key: str) -> None:
        self._transient.pop(key, None)

    # -- lifecycle ----------------------------------------------------------

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
        super().clear()
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

    # -- what the backend reads when saving ---------------------------------

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

    def _changed_since_load(self, key: str, value: Any) -> bool:
        if key in self._touched or key not in self._loaded_keys:
            return True
        if key not in self._pristine:
            return False
        try:
            return bool(json.dumps(value) != self._pristine[key])
        except (TypeError, ValueError):
            return True  # mutated into something JSON cannot hold: check_json names it

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
        )


_ATTRIBUTES = frozenset(Session.__annotations__)
