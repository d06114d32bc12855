"""A session's attributes: a typo or another framework's habit fails loudly.

``session.permanent = True`` (Flask) or ``session.set_expiry(300)`` (Django)
would otherwise be accepted, or read as a missing key, and do nothing. The
error says what does the job here.
"""

from __future__ import annotations

from typing import Any

#: What users of other frameworks reach for, and what does it here.
HABITS = {
    "permanent": "for a session that outlives the browser, call session.set_max_age(seconds) "
    "(None: until the browser closes)",
    "set_expiry": "call session.set_max_age(seconds) (None: until the browser closes)",
    "cycle_key": "call session.regenerate_id()",
    "flush": "call session.invalidate()",
}


def no_attribute(name: str, *, assigned: bool) -> AttributeError:
    by_key = f"session[{name!r}] = value" if assigned else f"session.get({name!r})"
    hint = HABITS.get(name, f"session data goes by key: {by_key}")
    return AttributeError(f"Session has no attribute {name!r}; {hint}")


class StrictAttributes:
    """Only the attributes a class declares can be assigned; others raise with a hint.

    The public attributes a subclass may assign are those annotated in its
    class body or its bases'; names starting with ``_`` and names the class
    defines (properties with a setter) are assignable too.
    """

    #: Filled in for each subclass from the annotations along its MRO.
    _declared: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._declared = frozenset(
            name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", ())
        )

    def __setattr__(self, name: str, value: Any) -> None:
        # Runs for every attribute the session sets on itself: cheapest test first.
        if name in self._declared or name[:1] == "_" or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            raise no_attribute(name, assigned=True)

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes that do not exist.
        if name.startswith("_"):
            raise AttributeError(name)
        raise no_attribute(name, assigned=False)
