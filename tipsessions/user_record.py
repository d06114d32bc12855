"""A user's registry record, as stored: a revocation epoch and the user's sessions.

The record's data holds:

* ``e``: the revocation epoch, in milliseconds. ``revoke_user()`` raises it;
  a session bound under a lower epoch is revoked, whichever process serves it.
* ``s:<fingerprint>``: one of the user's sessions, written once when it is
  bound: its cookie name, backend, creation time and label. A session whose
  entry is gone is revoked: signing out one device deletes its entry.
* ``k:<fingerprint>``: a server-side session's storage key (a digest of its
  id, never the id), so that revoking deletes its record at once; rewritten
  when ``regenerate_id()`` moves the session.
* ``t:<fingerprint>``: ``[last seen, ends by]``, rewritten as the session is
  used, at most once per ``session_refresh_interval`` per process.

Whatever a store returns is read as data: a malformed entry is left out,
which revokes that one session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .binding import Binding, is_fingerprint
from .record import Record

#: An entry is deleted this long after the time it said its session ends:
#: never sooner, as the last report of a session in use may lag its use.
PRUNE_AFTER = 3600


@dataclass(frozen=True)
class Entry:
    """One session of a user as the registry knows it."""

    fingerprint: str
    name: str
    backend: str
    created: float
    label: str | None
    #: The storage key of a server-side session; ``None`` for a cookie session.
    key: str | None
    seen: float
    #: The session ends by then unless it is used again; ``None``: no limit.
    until: float | None

    def live(self, now: float) -> bool:
        return self.until is None or self.until > now

    def stored(self) -> dict[str, Any]:
        """The record keys that hold this entry."""
        s_key, k_key, t_key = entry_keys(self.fingerprint)
        keys: dict[str, Any] = {
            s_key: {"n": self.name, "b": self.backend, "c": self.created, "l": self.label},
            t_key: [self.seen, self.until],
        }
        if self.key is not None:
            keys[k_key] = self.key
        return keys


@dataclass(frozen=True)
class UserRecord:
    """A user's registry record, decoded."""

    epoch: int
    entries: Mapping[str, Entry]
    #: Keys that belong to no entry any more (left by a report that raced a revocation).
    orphans: frozenset[str] = frozenset()

    def admits(self, binding: Binding) -> bool:
        return binding.epoch >= self.epoch and binding.fingerprint in self.entries

    def prunable(self, now: float) -> set[str]:
        """Record keys that can go: entries long dead, and orphans."""
        dead = (
            fp
            for fp, entry in self.entries.items()
            if entry.until is not None and entry.until + PRUNE_AFTER < now
        )
        return {key for fp in dead for key in entry_keys(fp)} | self.orphans


def entry_keys(fingerprint: str) -> tuple[str, str, str]:
    return f"s:{fingerprint}", f"k:{fingerprint}", f"t:{fingerprint}"


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode(record: Record) -> UserRecord:
    """The registry record; :class:`ValueError` when its epoch is unusable.

    A malformed entry is left out, which revokes that one session: what a
    store returns never admits more than it says.
    """
    data = record.data
    epoch = data.get("e")
    if type(epoch) is not int or epoch < 0:
        raise ValueError("a registry record's epoch is a whole number")
    entries: dict[str, Entry] = {}
    used = {"e"}
    for name, value in data.items():
        kind, _, fp = name.partition(":")
        entry = _entry(fp, value, data) if kind == "s" and is_fingerprint(fp) else None
        if entry is not None:
            entries[fp] = entry
            used.update(entry_keys(fp))
    return UserRecord(epoch, entries, frozenset(data.keys() - used))


def _entry(fp: str, value: Any, data: Mapping[str, Any]) -> Entry | None:
    """The entry of ``s:<fp>`` and its ``k:`` and ``t:`` keys; ``None`` when malformed."""
    if not isinstance(value, dict):
        return None
    created, title, backend, label = (value.get(k) for k in ("c", "n", "b", "l"))
    key, times = data.get(f"k:{fp}"), data.get(f"t:{fp}")
    if not _number(created) or not (isinstance(title, str) and isinstance(backend, str)):
        return None
    if not (label is None or isinstance(label, str)) or not (key is None or isinstance(key, str)):
        return None
    if times is None:
        seen, until = created, None
    elif isinstance(times, list) and len(times) == 2:
        seen, until = times
    else:
        return None
    if not _number(seen) or not (until is None or _number(until)):
        return None
    return Entry(
        fp,
        title,
        backend,
        float(created),
        label,
        key,
        float(seen),
        None if until is None else float(until),
    )
