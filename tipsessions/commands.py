"""What the command line's commands do; :mod:`tipsessions.__main__` reads their arguments.

The ``run_*`` functions print what someone at a terminal reads and return
the exit status; errors are raised, for the command line to report.
:func:`purge` and :func:`load_config` serve scripts too.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from .admin import revoke_session, revoke_user, user_sessions
from .backends.base import Purgeable
from .config import load_settings
from .errors import ConfigError
from .runtime import Runtime

#: ``(purged so far, expired in total or None when unknown)``
Progress = Callable[[int, int | None], None]


def purge(
    app_config: Mapping[str, Any],
    backend: str,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> int:
    """Delete the sessions of ``backend`` that have expired; return how many.

    ``app_config`` is the application's configuration, the dict holding
    ``"tipsessions"``. Raises :class:`~tipsessions.ConfigError` for a bad
    configuration or a backend that cannot be purged, and
    :class:`~tipsessions.BackendUnavailable` when its server cannot be reached.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", f"must be a positive whole number, not {batch_size!r}")
    chosen = Runtime(load_settings(app_config)).backend(backend)
    if not isinstance(chosen, Purgeable):
        raise ConfigError(
            backend,
            f"the {backend} backend cannot be purged: only backends that keep expired "
            "sessions (file, datastore) need it",
        )
    # Fixed at the start, so that a long purge has a definite end.
    before = time.time()
    total = chosen.count_expired(before) if progress else None
    purged = 0
    if progress:
        progress(purged, total)
    for deleted in chosen.purge_expired(before, batch_size):
        purged += deleted
        if progress:
            progress(purged, total)
    return purged


def load_config(spec: str) -> Mapping[str, Any]:
    """The configuration dict that ``--config`` names.

    ``spec`` is a module (``config.production``) or the path of a Python
    file (``config/production.py``), optionally followed by
    ``:attribute`` (default ``config``). A file is run on its own, so it
    needs nothing on ``sys.path`` but what it imports.
    """
    location, _, attribute = spec.rpartition(":") if ":" in spec else (spec, "", "")
    attribute = attribute or "config"
    try:
        if location.endswith(".py"):
            module = _run_file(Path(location))
        else:
            module = importlib.import_module(location)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError("--config", f"cannot import {location!r}: {error}") from error
    value = getattr(module, attribute, None)
    if not isinstance(value, Mapping):
        raise ConfigError("--config", f"{location}:{attribute} is not a configuration dict")
    return value


def _run_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError("--config", f"no such file: {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"tipsessions_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError("--config", f"{str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_secret() -> str:
    """A secret for ``secret_key``: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class ProgressBar:
    """A progress line redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, label: str, width: int = 30) -> None:
        self.stream, self.label, self.width = stream, label, width
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            filled = min(self.width, self.width * done // total)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"{self.label} [{bar}] {done}/{total}"
        else:
            line = f"{self.label}: {done} deleted"
        self.stream.write(f"\r{line}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_purge(spec: str, backend: str, batch_size: int) -> int:
    """``purge``: with a progress bar on a terminal, and how long it took."""
    began = time.monotonic()
    bar = ProgressBar(sys.stderr, f"purging {backend}") if sys.stderr.isatty() else None
    try:
        purged = purge(load_config(spec), backend, batch_size, bar)
    finally:
        if bar:
            bar.close()
    elapsed = time.monotonic() - began
    print(f"purged {_count(purged, 'expired')} from the {backend} backend in {elapsed:.1f}s")
    return 0


def run_revoke(spec: str, user_id: str, fingerprint: str | None) -> int:
    """``revoke``: every session of the user, or the one ``fingerprint`` names."""
    app_config = load_config(spec)
    if fingerprint is None:
        ended = revoke_user(app_config, user_id)
        print(f"revoked {_count(ended, 'live')} of user {user_id!r}")
    elif revoke_session(app_config, user_id, fingerprint):
        print(f"revoked session {fingerprint} of user {user_id!r}")
    else:
        print(f"user {user_id!r} has no live session {fingerprint}")
        return 1
    return 0


def run_sessions(spec: str, user_id: str) -> int:
    """``sessions``: one line per live session of the user, then how many."""
    found = user_sessions(load_config(spec), user_id)
    for entry in found:
        created, seen = _utc(entry.created), _utc(entry.last_seen)
        print(
            f"{entry.fingerprint}  {entry.name} ({entry.backend})  created {created}  "
            f"last seen {seen}  {entry.label or ''}".rstrip()
        )
    print(f"{_count(len(found), 'live')} of user {user_id!r}")
    return 0


def _count(number: int, adjective: str) -> str:
    return f"{number} {adjective} {'session' if number == 1 else 'sessions'}"


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))
