"""What a backend stores, and the change set a request applies to it.

A :class:`Record` is the whole stored state of one session. A
:class:`ChangeSet` is what one request did to it: keys set, keys deleted,
flashes added and flashes read. Server-side backends apply a change set to
the *current* stored record instead of overwriting it with the request's
stale copy, so concurrent requests touching different keys all survive.
Everything is JSON; nothing here can execute data.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from .errors import SerializationError

#: A flash as stored: ``[id, value, level]``. The id lets parallel requests
#: consume exactly the flashes they showed, never a neighbour's.
FlashEntry = list[Any]


def check_json(key: str, value: Any) -> None:
    """Refuse anything but plain JSON data, naming the session key.

    ``json.dumps`` alone is too lenient: it turns tuples into lists and
    integer dict keys into strings, so the value would come back different.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise SerializationError(key, f"{item!r} is not valid JSON")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for sub_key, sub_value in item.items():
                if not isinstance(sub_key, str):
                    raise SerializationError(
                        key, f"dict keys must be strings, not {type(sub_key).__name__}"
                    )
                stack.append(sub_value)
        else:
            raise SerializationError(
                key,
                f"{type(item).__name__} is not JSON-serialisable; store str, int, "
                "float, bool, None, list or dict with str keys",
            )


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def new_flash_id() -> str:
    return secrets.token_urlsafe(6)


@dataclass
class Record:
    """The stored state of one session.

    A ``tombstone`` marks an id retired by ``regenerate_id()``: requests
    still carrying it must reach no data and write nothing.
    """

    data: dict[str, Any] = field(default_factory=dict)
    flashes: dict[str, list[FlashEntry]] = field(default_factory=dict)
    created: int = 0
    tombstone: bool = False

    def is_empty(self) -> bool:
        return not self.data and not any(self.flashes.values())

    def to_json(self) -> bytes:
        if self.tombstone:
            return b'{"t":1}'
        body: dict[str, Any] = {"d": self.data, "c": self.created}
        if self.flashes:
            body["f"] = self.flashes
        return dumps(body)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Record:
        """Decode a stored record; :class:`ValueError` for anything malformed."""
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("a record is a JSON object")
        if body.get("t") == 1:
            return cls(tombstone=True)
        data, flashes, created = body.get("d"), body.get("f", {}), body.get("c")
        if not isinstance(data, dict) or not isinstance(flashes, dict):
            raise ValueError("record data and flashes must be objects")
        if isinstance(created, bool) or not isinstance(created, int):
            raise ValueError("record creation time must be an integer")
        for entries in flashes.values():
            if not isinstance(entries, list) or not all(
                isinstance(e, list) and len(e) == 3 for e in entries
            ):
                raise ValueError("flashes must be [id, value, level] lists")
        return cls(data=data, flashes=flashes, created=created)


@dataclass
class ChangeSet:
    """What one request changed, to be merged into the newest stored record."""

    updates: dict[str, Any] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    flashes_added: dict[str, list[FlashEntry]] = field(default_factory=dict)
    flashes_read: dict[str, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.updates or self.deleted or self.flashes_added or self.flashes_read)

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
        return Record(data=data, flashes=flashes, created=record.created)
