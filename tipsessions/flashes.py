"""Flashes: messages a session shows once, typically after a redirect.

Each entry carries a random id, and a save sends only what this request
queued and the ids of what it showed: a parallel request of the same visitor
keeps the messages it queued, and consumes only those it showed.
"""

from __future__ import annotations

from typing import Any

from .json_values import check_json
from .record import FlashEntry, new_flash_id


class Flashes:
    """The flash methods of :class:`~tipsessions.Session`."""

    #: Every queue as loaded and changed, and this request's additions and reads.
    _flashes: dict[str, list[FlashEntry]]
    _flashes_added: dict[str, list[FlashEntry]]
    _flashes_read: dict[str, set[str]]

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
