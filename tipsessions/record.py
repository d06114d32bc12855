"""What a backend stores, and the change set a request applies to it.

A :class:`Record` is the whole stored state of one session. A
:class:`ChangeSet` is what one request did to it: keys set, keys deleted,
flashes added and flashes read. Server-side backends apply a change set to
the *current* stored record instead of overwriting it with the request's
stale copy, so concurrent requests touching different keys all survive.
Records are JSON, read through :func:`~tipsessions.json_values.decode_json`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .binding import Binding
from .json_values import MAX_DEPTH, check_json, decode_json, dumps

__all__ = [
    "BROWSER_SESSION",
    "MAX_DEPTH",
    "ChangeSet",
    "FlashEntry",
    "Record",
    "check_json",
    "decode_json",
    "dumps",
    "new_flash_id",
]

#: A flash as stored: ``[id, value, level]``. The id lets parallel requests
#: consume exactly the flashes they showed, never a neighbour's.
FlashEntry = list[Any]


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
