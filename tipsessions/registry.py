"""The user registry: per user, a revocation epoch and the user's sessions.

Each user has one record on a server-side backend (the ``users`` setting),
stored under the backend's own key for ``"user:" + sha256(user id)``, so a
dump of the store holds no user id and no client can name it as a session.
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

Every write is an ``update`` that merges a few keys into the stored record,
atomically on every backend, so concurrent sign-ins, reports and
revocations never overwrite each other. An entry is written once, with a
fresh fingerprint, and never again once deleted: no write can bring a
revoked session back. A revocation raises the epoch before it lists the
entries to delete, and a sign-in reads the epoch before it writes its entry,
so a sign-in racing a revocation either is listed by it or is bound under
the old epoch; either way it is revoked.

Each process keeps what it last read of a user for ``check_interval``
seconds: a session is admitted on that when it can be, and a refusal is
always read again fresh, so the cache only ever delays a revocation, never
invents one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from .backends.base import WriteResult
from .backends.server import ServerBackend
from .binding import Binding, is_fingerprint
from .record import ChangeSet, Record

security_log = logging.getLogger("tipsessions.security")

#: Seconds a user's record is kept after its last write. Browsers keep no
#: cookie longer than 400 days, and any use of a bound session writes.
REGISTRY_TTL = 400 * 24 * 3600
#: An entry is deleted this long after the time it said its session ends:
#: never sooner, as the last report of a session in use may lag its use.
PRUNE_AFTER = 3600
#: Users and sessions whose reads and reports a process remembers.
CACHE_SIZE = 10_000


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


class Registry:
    """The user registry on one server-side backend, with this process's cache."""

    def __init__(self, backend: ServerBackend, check_interval: int, report_interval: int) -> None:
        self.backend = backend
        self.check_interval = check_interval
        #: A session in use reports itself at most this often, per process.
        self.report_interval = report_interval
        self._read: OrderedDict[str, tuple[float, UserRecord | None]] = OrderedDict()
        self._reported: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, user_id: str) -> str:
        digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()
        return self.backend.storage_key(f"user:{digest}")

    def fetch(self, user_id: str) -> UserRecord | None:
        """The user's record, read now (and remembered); ``None`` when there is none."""
        stored, _ = self.backend.read(self.key(user_id))
        found = None
        if stored is not None and not stored.tombstone:
            try:
                found = decode(stored)
            except ValueError as error:
                # Treated as absent: every session of this user reads as new.
                security_log.warning(
                    "%s backend: unusable user registry record (%s)", self.backend.name, error
                )
        self._remember(user_id, found)
        return found

    def admits(self, binding: Binding) -> bool:
        """Whether a session bound so is still signed in.

        Trusts this process's last read for ``check_interval`` seconds, but
        only to admit: a refusal is checked against a fresh read, because a
        session signed in through another process may be newer than that read.
        """
        with self._lock:
            remembered = self._read.get(binding.user_id)
        if remembered is not None:
            read_at, known = remembered
            fresh = 0 <= time.time() - read_at < self.check_interval
            if fresh and known is not None and known.admits(binding):
                return True
        known = self.fetch(binding.user_id)
        return known is not None and known.admits(binding)

    def register(self, binding: Binding, entry: Entry) -> None:
        """Write a newly bound session's entry, pruning what is long dead.

        This process then knows the entry without reading it back: the read
        that gave the binding its epoch is a moment old.
        """
        with self._lock:
            remembered = self._read.get(binding.user_id)
        known = remembered[1] if remembered else None
        updates = entry.stored()
        pruned = known.prunable(entry.seen) if known else set()
        changes = ChangeSet(updates=updates, deleted=pruned - updates.keys())
        self._write(binding.user_id, changes, create_with=binding.epoch)
        base = known or UserRecord(binding.epoch, {})
        self._remember(
            binding.user_id, replace(base, entries={**base.entries, entry.fingerprint: entry})
        )
        self._mark_reported(binding.fingerprint, entry.seen)

    def move(self, binding: Binding, key: str) -> None:
        """A server-side session moved to a new storage key (``regenerate_id()``)."""
        self._write(binding.user_id, ChangeSet(updates={f"k:{binding.fingerprint}": key}))

    def report_due(self, fingerprint: str) -> bool:
        """Whether this process last reported the session ``report_interval`` or more ago."""
        last = self._reported.get(fingerprint)
        return last is None or not 0 <= time.time() - last < self.report_interval

    def report(self, binding: Binding, until: float | None) -> None:
        """Record that a session was used now; at most once per ``report_interval``."""
        if not self.report_due(binding.fingerprint):
            return
        now = time.time()
        self._write(binding.user_id, ChangeSet(updates={f"t:{binding.fingerprint}": [now, until]}))
        self._mark_reported(binding.fingerprint, now)

    def forget(self, binding: Binding) -> None:
        """Delete one session's entry: it signed out or was bound to someone else."""
        self._write(binding.user_id, ChangeSet(deleted=set(entry_keys(binding.fingerprint))))
        self._drop(binding.user_id)

    def next_epoch(self, user_id: str) -> int:
        """An epoch above the stored one, read fresh: what a revocation raises it to.

        Mostly the time in milliseconds; one more than the stored epoch when
        this machine's clock is behind the one that wrote it.
        """
        known = self.fetch(user_id)
        return max(int(time.time() * 1000), (known.epoch if known else 0) + 1)

    def raise_epoch(self, user_id: str, epoch: int) -> None:
        self._write(user_id, ChangeSet(updates={"e": epoch}), create_with=epoch)

    def remove(
        self, user_id: str, fingerprints: Iterable[str] | None = None, keep: Iterable[str] = ()
    ) -> list[Entry]:
        """Delete entries (``None``: all but ``keep``); return those that were there.

        Read after the epoch was raised, so a sign-in that wrote its entry
        before that read is listed and removed here.
        """
        known = self.fetch(user_id)
        if known is None:
            return []
        wanted = known.entries.keys() if fingerprints is None else set(fingerprints)
        removed = [known.entries[fp] for fp in wanted if fp in known.entries and fp not in keep]
        deleted = {key for entry in removed for key in entry_keys(entry.fingerprint)}
        deleted |= known.prunable(time.time())
        if deleted:
            self._write(user_id, ChangeSet(deleted=deleted))
        gone = {entry.fingerprint for entry in removed}
        entries = {fp: entry for fp, entry in known.entries.items() if fp not in gone}
        self._remember(user_id, replace(known, entries=entries, orphans=frozenset()))
        return removed

    def _write(self, user_id: str, changes: ChangeSet, create_with: int | None = None) -> None:
        """Merge ``changes`` into the user's record; create it if asked and absent.

        A record that is absent is created only by a sign-in or a
        revocation: a report or a deletion for a user with no record has
        nothing to say, since without a record every session of the user
        is already refused.
        """
        key = self.key(user_id)
        if self.backend.update(key, changes, REGISTRY_TTL, None) is not WriteResult.GONE:
            return
        if create_with is not None:
            data = {"e": create_with, **changes.updates}
            self.backend.put(key, Record(data=data, created=time.time()), REGISTRY_TTL)
            self._drop(user_id)

    def _remember(self, user_id: str, known: UserRecord | None) -> None:
        with self._lock:
            self._read[user_id] = (time.time(), known)
            self._read.move_to_end(user_id)
            while len(self._read) > CACHE_SIZE:
                self._read.popitem(last=False)

    def _drop(self, user_id: str) -> None:
        with self._lock:
            self._read.pop(user_id, None)

    def _mark_reported(self, fingerprint: str, when: float) -> None:
        with self._lock:
            self._reported[fingerprint] = when
            self._reported.move_to_end(fingerprint)
            while len(self._reported) > CACHE_SIZE:
                self._reported.popitem(last=False)
