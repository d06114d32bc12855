"""What a backend stores, the change set a request applies to it, and JSON.

A :class:`Record` is the whole stored state of one session. A
:class:`ChangeSet` is what one request did to it: keys set, keys deleted,
flashes added and flashes read. Server-side backends apply a change set to
the *current* stored record instead of overwriting it with the request's
stale copy, so concurrent requests touching different keys all survive.

Everything is JSON; nothing here can execute data. Cookies and stored
records are both untrusted, so they share one decoder (:func:`decode_json`)
whose only failure is :class:`ValueError`, and the values a handler stores
are checked (:func:`check_json`) against the same limits, so that whatever
is written reads back identically.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any

from .binding import Binding
from .errors import SerializationError

#: A flash as stored: ``[id, value, level]``. The id lets parallel requests
#: consume exactly the flashes they showed, never a neighbour's.
FlashEntry = list[Any]

#: Deepest nesting of lists and dicts in one session value. Session data is
#: shallow in practice; a limit keeps a hostile record from exhausting the
#: interpreter's stack, and values are refused past it so they always read back.
MAX_DEPTH = 32
#: A record wraps values in up to three more levels: ``{"f": {key: [[id, value, level]]}}``.
_RECORD_DEPTH = MAX_DEPTH + 4
#: Longest integer, in bits, that certainly converts to text under the
#: interpreter's digit limit (``sys.get_int_max_str_digits``, 4300 by default).
_SAFE_INT_BITS = 4000

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number too large for a float")
    return number


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Any = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)
_SCAN = _DECODER.scan_once
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_json(raw: bytes | str) -> Any:
    """Parse untrusted JSON; :class:`ValueError` is the only failure, whatever ``raw`` holds.

    Beyond ``json.loads`` this refuses text that is not UTF-8, ``NaN`` and
    infinities, numbers past the float range or the integer digit limit,
    nesting past :data:`MAX_DEPTH`, and lone surrogates, none of which
    :func:`dumps` could write back.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        # The scanner alone: what we write has no surrounding white space.
        value, end = _SCAN(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (TypeError, AttributeError) as error:
        raise ValueError(str(error)) from None
    if end != len(text):
        raise ValueError("not JSON: extra data")
    # Counting brackets is far cheaper than walking, and bounds the depth.
    if text.count("[") + text.count("{") > _RECORD_DEPTH and _depth(value) > _RECORD_DEPTH:
        raise ValueError("nested too deeply")
    # A search for the escape first: a regex scan of every record would cost
    # more than the rest of the decoding.
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            dumps(value)
        except SerializationError:
            raise ValueError("a lone surrogate") from None
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item)
    return deepest


def check_json(key: str, value: Any) -> None:
    """Refuse anything that would not read back identically, naming the session key.

    ``json.dumps`` alone is too lenient: it turns tuples into lists and
    integer dict keys into strings, writes ``NaN``, and fails late, with
    other exception types, on lone surrogates and huge integers.
    """
    _check(key, value, 0)


def _check(key: str, item: Any, depth: int) -> None:
    # Exact types first: this runs on every assignment and every save.
    kind = type(item)
    if kind is str:
        if not item.isascii():
            _check_text(key, item)
    elif kind is int:
        if item.bit_length() > _SAFE_INT_BITS:
            _check_int(key, item)
    elif kind is list or kind is dict:
        if depth >= MAX_DEPTH:
            raise SerializationError(key, f"nested deeper than {MAX_DEPTH} levels")
        if kind is dict:
            for sub_key in item:
                if type(sub_key) is not str:
                    _check_dict_key(key, sub_key)
                elif not sub_key.isascii():
                    _check_text(key, sub_key)
            item = item.values()
        for child in item:
            _check(key, child, depth + 1)
    elif item is None or kind is bool:
        pass
    elif kind is float:
        if not math.isfinite(item):
            raise SerializationError(key, f"{item!r} is not valid JSON")
    elif isinstance(item, (str, int, float)):
        # Subclasses (an IntEnum, a str subclass) are written as their base value.
        _check(
            key,
            (str if isinstance(item, str) else float if isinstance(item, float) else int)(item),
            depth,
        )
    elif isinstance(item, dict):
        _check(key, dict(item), depth)
    else:
        raise SerializationError(
            key,
            f"{kind.__name__} is not JSON-serialisable; store str, int, "
            "float, bool, None, list or dict with str keys",
        )


def _check_dict_key(key: str, sub_key: Any) -> None:
    if not isinstance(sub_key, str):
        raise SerializationError(key, f"dict keys must be strings, not {type(sub_key).__name__}")
    if not sub_key.isascii():
        _check_text(key, sub_key)


def _check_text(key: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationError(key, "a string holds a lone surrogate, not text") from None


def _check_int(key: str, number: int) -> None:
    try:
        str(number)
    except ValueError:
        raise SerializationError(
            key, f"an integer of over {sys.get_int_max_str_digits()} digits"
        ) from None


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; :class:`SerializationError` for what cannot be written."""
    try:
        return _ENCODER.encode(obj).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as error:
        raise SerializationError("(value)", str(error) or type(error).__name__) from None


def new_flash_id() -> str:
    return secrets.token_urlsafe(6)


#: ``Record.max_age`` of a session chosen to end with the browser.
BROWSER_SESSION = 0


@dataclass
class Record:
    """The stored state of one session.

    A ``tombstone`` marks an id retired by ``regenerate_id()``: requests
    still carrying it must reach no data and write nothing. ``max_age`` is
    the lifetime chosen with ``set_max_age()``: ``None`` follows the
    configuration, :data:`BROWSER_SESSION` ends with the browser.
    """

    data: dict[str, Any] = field(default_factory=dict)
    flashes: dict[str, list[FlashEntry]] = field(default_factory=dict)
    created: float = 0
    tombstone: bool = False
    max_age: int | None = None
    #: The user this session is bound to with ``set_user()``, if any.
    user: Binding | None = None

    def is_empty(self) -> bool:
        return not self.data and not any(self.flashes.values()) and self.user is None

    def to_json(self) -> bytes:
        if self.tombstone:
            return b'{"t":1}'
        body: dict[str, Any] = {"d": self.data, "c": self.created}
        if self.flashes:
            body["f"] = self.flashes
        if self.max_age is not None:
            body["m"] = self.max_age
        if self.user is not None:
            body["u"] = self.user.to_json()
        return dumps(body)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Record:
        """Decode a stored record; :class:`ValueError` for anything malformed."""
        body = decode_json(raw)
        if not isinstance(body, dict):
            raise ValueError("a record is a JSON object")
        if body.get("t") == 1:
            return cls(tombstone=True)
        data, flashes, created = body.get("d"), body.get("f", {}), body.get("c")
        max_age = body.get("m")
        if not isinstance(data, dict) or not isinstance(flashes, dict):
            raise ValueError("record data and flashes must be objects")
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            raise ValueError("record creation time must be a number")
        if max_age is not None and (type(max_age) is not int or max_age < 0):
            raise ValueError("record lifetime must be a whole number of seconds")
        for entries in flashes.values():
            if not isinstance(entries, list) or not all(
                isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) for e in entries
            ):
                raise ValueError("flashes must be [id, value, level] lists")
        user = Binding.from_json(body["u"]) if "u" in body else None
        return cls(data=data, flashes=flashes, created=created, max_age=max_age, user=user)


@dataclass
class ChangeSet:
    """What one request changed, to be merged into the newest stored record."""

    updates: dict[str, Any] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    flashes_added: dict[str, list[FlashEntry]] = field(default_factory=dict)
    flashes_read: dict[str, set[str]] = field(default_factory=dict)
    #: A lifetime chosen in this request with ``set_max_age()``; ``None``: unchanged.
    max_age: int | None = None
    #: ``set_user()`` was called: ``user`` replaces the stored binding.
    user_changed: bool = False
    user: Binding | None = None

    def __bool__(self) -> bool:
        return bool(
            self.updates
            or self.deleted
            or self.flashes_added
            or self.flashes_read
            or self.max_age is not None
            or self.user_changed
        )

    def apply(self, record: Record) -> Record:
        """The record with this request's changes laid over it.

        Keys this request did not touch keep the stored value, whoever wrote
        it; for a key both wrote, this (later) save wins.
        """
        data = {k: v for k, v in record.data.items() if k not in self.deleted}
        data.update(self.updates)
        flashes: dict[str, list[FlashEntry]] = {}
        for key in record.flashes.keys() | self.flashes_added.keys():
            read = self.flashes_read.get(key, set())
            kept = [e for e in record.flashes.get(key, []) if e[0] not in read]
            kept.extend(self.flashes_added.get(key, []))
            if kept:
                flashes[key] = kept
        max_age = record.max_age if self.max_age is None else self.max_age
        user = self.user if self.user_changed else record.user
        return Record(
            data=data, flashes=flashes, created=record.created, max_age=max_age, user=user
        )
