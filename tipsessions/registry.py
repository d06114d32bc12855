"""The user registry: per user, a revocation epoch and the user's sessions.

Each user has one record on a server-side backend (the ``users`` setting),
stored under the backend's own key for ``"user:" + sha256(user id)``, so a
dump of the store holds no user id and no client can name it as a session.
What the record holds is :mod:`tipsessions.user_record`.

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
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from .backends.base import Backend, WriteResult
from .backends.server import ServerBackend
from .binding import Binding
from .config import Settings
from .errors import ConfigError
from .record import ChangeSet, Record
from .user_record import Entry, UserRecord, decode, entry_keys

security_log = logging.getLogger("tipsessions.security")

#: Seconds a user's record is kept after its last write. Browsers keep no
#: cookie longer than 400 days, and any use of a bound session writes.
REGISTRY_TTL = 400 * 24 * 3600
#: Users and sessions whose reads and reports a process remembers.
CACHE_SIZE = 10_000

_V = TypeVar("_V")


class _Recent(OrderedDict[str, _V]):
    """The :data:`CACHE_SIZE` items written last; a read is one plain dict lookup."""

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__()
        self._lock = lock

    def remember(self, key: str, value: _V) -> None:
        with self._lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > CACHE_SIZE:
                self.popitem(last=False)


def build_registry(settings: Settings, backend_of: Callable[[str], Backend]) -> Registry | None:
    """The application's registry, or ``None`` without the ``users`` setting."""
    if settings.users is None:
        return None
    backend = backend_of(settings.users.backend)
    if not isinstance(backend, ServerBackend) or backend.evicts:
        reason = (
            "it may evict entries to make room, and an evicted revocation epoch would "
            "bring revoked cookie sessions back"
            if isinstance(backend, ServerBackend)
            else "it keeps nothing on the server"
        )
        raise ConfigError(
            "tipsessions.users.backend",
            f"the {backend.name!r} backend cannot hold the user registry: {reason}",
        )
    return Registry(backend, settings.users.check_interval, settings.session_refresh_interval)


class Registry:
    """The user registry on one server-side backend, with this process's cache."""

    def __init__(self, backend: ServerBackend, check_interval: int, report_interval: int) -> None:
        self.backend = backend
        self.check_interval = check_interval
        #: A session in use reports itself at most this often, per process.
        self.report_interval = report_interval
        self._lock = threading.Lock()
        #: What this process last read of each user, and when.
        self._read: _Recent[tuple[float, UserRecord | None]] = _Recent(self._lock)
        #: When this process last reported each session in use.
        self._reported: _Recent[float] = _Recent(self._lock)

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
        self._read.remember(user_id, (time.time(), found))
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
        updated = replace(base, entries={**base.entries, entry.fingerprint: entry})
        self._read.remember(binding.user_id, (time.time(), updated))
        self._reported.remember(binding.fingerprint, entry.seen)

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
        self._reported.remember(binding.fingerprint, now)

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
        updated = replace(known, entries=entries, orphans=frozenset())
        self._read.remember(user_id, (time.time(), updated))
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

    def _drop(self, user_id: str) -> None:
        with self._lock:
            self._read.pop(user_id, None)
