"""The dict side of a session: every way of changing it is noticed.

Change tracking compares each list and dict with a private copy of what was
loaded, so ``session["cart"].append(3)`` is saved without the user flagging
it. Reads see the request's transient values (``set_t``) first; those are
never stored.
"""

from __future__ import annotations

import json
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any, TypeVar

from .json_values import check_json

_MISSING: Any = object()
_Self = TypeVar("_Self", bound="TrackedDict")


class TrackedDict(dict[str, Any]):
    """A dict that records which keys changed since it was loaded or saved.

    Its state is set by the subclass's ``__init__`` (see
    :class:`~tipsessions.Session`), together with the subclass's own, in
    one update: this runs for every session loaded.
    """

    #: Keys as loaded (or last saved), values handed out as JSON text, keys
    #: written or deleted since, and this request's transient values.
    _loaded_keys: set[str]
    _pristine: dict[str, Any]
    _touched: set[str]
    _transient: dict[str, Any]

    def _mark_clean(self) -> None:
        """Take the current contents as the baseline changes are measured from."""
        loaded = set(dict.keys(self))
        # Values handed out before are still held by the caller: copy them now.
        held = (self._pristine.keys() | self._touched) & loaded
        self.__dict__.update(_loaded_keys=loaded, _pristine={}, _touched=set())
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

    def _changed_since_load(self, key: str, value: Any) -> bool:
        if key in self._touched or key not in self._loaded_keys:
            return True
        if key not in self._pristine:
            return False
        try:
            return bool(json.dumps(value) != self._pristine[key])
        except (TypeError, ValueError):
            return True  # mutated into something JSON cannot hold: check_json names it

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

    def __ior__(self: _Self, other: Any) -> _Self:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        self._touched.update(self)
        super().clear()

    def copy(self) -> dict[str, Any]:
        """A plain dict of the stored data (transient values left out)."""
        self._expose_all()
        return dict(dict.items(self))

    def set_t(self, key: str, value: Any) -> None:
        """Keep a value for this request only; it is never stored."""
        self._transient[key] = value

    def get_t(self, key: str, default: Any = None) -> Any:
        return self._transient.get(key, default)

    def delete_t(self, key: str) -> None:
        self._transient.pop(key, None)
