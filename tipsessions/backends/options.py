"""How a backend declares its options, and how its configuration section is checked.

A backend's section (``config["tipsessions"]["redis"]``, say) goes to its
:attr:`~tipsessions.backends.Backend.options_class` once, when the
configuration is loaded: a key the class does not declare is refused as a
typo, each value is checked against its field's type, and every failure is a
:class:`~tipsessions.ConfigError` naming the key as ``tipsessions.<backend>.<key>``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any, NamedTuple, Self

from ..errors import ConfigError


class _Rule(NamedTuple):
    """What a field's type asks of a value."""

    needs: str
    accepts: Callable[[Any], bool]
    optional: bool = False


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


_RULES = {
    bool: _Rule("True or False", lambda value: isinstance(value, bool)),
    str: _Rule("a non-empty string", lambda value: isinstance(value, str) and value != ""),
    int: _Rule("a positive whole number", lambda value: _number(value) and isinstance(value, int)),
    float: _Rule("a positive number", _number),
}


class BackendOptions(Mapping[str, Any]):
    """A backend's options, read as attributes or as a mapping.

    This base takes any keys, unchecked. A backend declares its own options
    as a frozen dataclass subclass, one field per key with its default::

        @dataclass(frozen=True)
        class SQLiteOptions(BackendOptions):
            #: The database file.
            path: str = "sessions.sqlite3"

    Values are checked by their field's type: a ``str`` is non-empty, an
    ``int`` or a ``float`` is positive (a timeout, a size or a count of zero
    would not work), a ``bool`` is ``True`` or ``False``, and ``X | None``
    takes ``None`` too. Other types are left to :meth:`check`.
    """

    def __init__(self, **options: Any) -> None:
        vars(self).update(options)

    @classmethod
    def parse(cls, where: str, section: Any) -> Self:
        """The options of ``section``, checked; ``where`` is ``tipsessions.<backend>``."""
        if isinstance(section, cls):
            return section
        if not isinstance(section, Mapping):
            raise ConfigError(where, f"must be a dict, not {type(section).__name__}")
        declared = _declared(cls)
        for key, value in section.items():
            if not isinstance(key, str) or (declared is not None and key not in declared):
                raise ConfigError(f"{where}.{key}", "unknown setting (a typo?)")
            rule = declared[key] if declared else None
            if rule and not (rule.accepts(value) or (rule.optional and value is None)):
                raise ConfigError(f"{where}.{key}", f"must be {rule.needs}, not {value!r}")
        return cls(**section).check(where)

    def check(self, where: str) -> Self:
        """Raise :class:`~tipsessions.ConfigError` for what the field types cannot say.

        Returns these options, or a normalised copy (``dataclasses.replace``).
        """
        return self

    def __getitem__(self, key: str) -> Any:
        return vars(self)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(vars(self))

    def __len__(self) -> int:
        return len(vars(self))


@cache
def _declared(cls: type[BackendOptions]) -> dict[str, _Rule | None] | None:
    """Each field's rule (``None``: unchecked), or ``None`` when ``cls`` declares no fields."""
    if not is_dataclass(cls):
        return None
    try:
        hints = typing.get_type_hints(cls)
    except NameError:  # a type its module cannot resolve: left unchecked
        hints = {}
    declared: dict[str, _Rule | None] = {}
    for field in fields(cls):
        kind = hints.get(field.name)
        members = typing.get_args(kind)
        if isinstance(kind, types.UnionType) and len(members) == 2 and type(None) in members:
            base = _RULES.get(next(m for m in members if m is not type(None)))
            declared[field.name] = base and base._replace(optional=True)
        else:
            declared[field.name] = _RULES.get(kind)
    return declared
