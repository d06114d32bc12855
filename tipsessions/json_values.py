"""Session values as JSON: what may be stored, and one decoder for untrusted text.

Cookies and stored records are both untrusted, so they share one decoder
(:func:`decode_json`) whose only failure is :class:`ValueError`. The values
a handler stores are checked (:func:`check_json`) against the same limits,
so that whatever is written reads back identically. Everything is JSON;
nothing here can execute data.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from .errors import SerializationError

#: Deepest nesting of lists and dicts in one session value. Session data is
#: shallow in practice; a limit keeps a hostile record from exhausting the
#: interpreter's stack, and values are refused past it so they always read back.
MAX_DEPTH = 32
#: A stored record wraps values in up to three more levels:
#: ``{"f": {key: [[id, value, level]]}}``.
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
