"""The command line: ``python -m tipsessions {purge,revoke,sessions,keygen} ...``.

``purge --backend file --config myapp.config`` deletes expired sessions.
Backends whose server expires data by itself (memcache, redis) need no
purge; ``file`` and ``datastore`` keep expired sessions, which read as
missing, until this deletes them. Run it from cron. It is idempotent: a
second run right after the first purges nothing. The backend is built
exactly as the application builds it, from the same configuration dict, so
the purge reaches the sessions the application wrote.

``revoke --user ID --config myapp.config`` signs a user out everywhere, as
``tipsessions.revoke_user()`` does: for an administrator, or after an
incident. ``--session FINGERPRINT`` ends one session only. ``sessions --user
ID`` lists the user's live sessions and their fingerprints first.

``keygen`` prints a fresh secret for ``secret_key``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ._version import __version__
from .admin import revoke_session, revoke_user, user_sessions
from .backends.base import Purgeable
from .config import load_settings
from .errors import ConfigError, SessionError
from .runtime import Runtime

#: Names the configuration module when ``--config`` is left out.
CONFIG_VARIABLE = "TIPSESSIONS_CONFIG"

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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """A parser that answers a usage error with the help of the command misused.

    argparse prints the usage line only, and for a subcommand's own checks
    (made after parsing) the top-level one; the full help of the right
    command is what someone who got it wrong needs.
    """

    def error(self, message: str) -> NoReturn:
        self.print_help(sys.stderr)
        self.exit(2, f"\n{self.prog}: error: {message}\n")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(prog="python -m tipsessions", description="tipsessions' command line")
    parser.add_argument("--version", action="version", version=f"tipsessions {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    purge_command = commands.add_parser(
        "purge",
        help="delete expired sessions of a file or datastore backend",
        description="Delete the expired sessions of a file or datastore backend.",
    )
    purge_command.add_argument(
        "--backend", required=True, help="a configured backend name: file or datastore"
    )
    _config_option(purge_command)
    purge_command.add_argument(
        "--batch-size",
        type=_positive,
        default=500,
        help="sessions deleted per batch (default: 500)",
    )
    revoke_command = commands.add_parser(
        "revoke",
        help="sign a user out everywhere, cookie sessions included",
        description="End every session of a user (or one, with --session): server-side "
        "sessions at once, cookie sessions within the registry's check_interval.",
    )
    revoke_command.add_argument("--user", required=True, help="the user id given to set_user()")
    revoke_command.add_argument(
        "--session",
        metavar="FINGERPRINT",
        help="end only this session (fingerprints are listed by the sessions command)",
    )
    _config_option(revoke_command)
    sessions_command = commands.add_parser(
        "sessions",
        help="list a user's live sessions",
        description="List the live sessions of a user: fingerprint, cookie name, backend, "
        "when created and last seen (UTC), and label.",
    )
    sessions_command.add_argument("--user", required=True, help="the user id given to set_user()")
    _config_option(sessions_command)
    keygen_command = commands.add_parser(
        "keygen",
        help="print a fresh secret for secret_key",
        description="Print a fresh random secret (256 bits) for the secret_key setting.",
    )
    return parser, {
        "purge": purge_command,
        "revoke": revoke_command,
        "sessions": sessions_command,
        "keygen": keygen_command,
    }


def _config_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--config",
        default=os.environ.get(CONFIG_VARIABLE),
        metavar="MODULE|FILE.py[:ATTRIBUTE]",
        help="the application's configuration dict: a module (config.production) or a "
        "Python file (config/production.py), attribute 'config' unless named; "
        f"default: ${CONFIG_VARIABLE}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "keygen":
        print(new_secret())
        return 0
    if not args.config:
        commands[args.command].error(f"--config is required when {CONFIG_VARIABLE} is not set")
    try:
        if args.command == "revoke":
            return _revoke(load_config(args.config), args.user, args.session)
        if args.command == "sessions":
            return _list_sessions(load_config(args.config), args.user)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as error:
        commands[args.command].error(str(error))
    except SessionError as error:
        # The registry or a session backend is unreachable: worth a retry.
        print(f"error: {error}", file=sys.stderr)
        return 1

    began = time.monotonic()
    bar = ProgressBar(sys.stderr, f"purging {args.backend}") if sys.stderr.isatty() else None
    try:
        purged = purge(load_config(args.config), args.backend, args.batch_size, bar)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SessionError as error:
        # The server is unreachable, or a lock stayed taken: worth a retry.
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if bar:
            bar.close()
    noun = "session" if purged == 1 else "sessions"
    elapsed = time.monotonic() - began
    print(f"purged {purged} expired {noun} from the {args.backend} backend in {elapsed:.1f}s")
    return 0


def _revoke(app_config: Mapping[str, Any], user_id: str, fingerprint: str | None) -> int:
    if fingerprint is None:
        ended = revoke_user(app_config, user_id)
        noun = "session" if ended == 1 else "sessions"
        print(f"revoked {ended} live {noun} of user {user_id!r}")
    elif revoke_session(app_config, user_id, fingerprint):
        print(f"revoked session {fingerprint} of user {user_id!r}")
    else:
        print(f"user {user_id!r} has no live session {fingerprint}")
        return 1
    return 0


def _list_sessions(app_config: Mapping[str, Any], user_id: str) -> int:
    found = user_sessions(app_config, user_id)
    for entry in found:
        created, seen = _utc(entry.created), _utc(entry.last_seen)
        print(
            f"{entry.fingerprint}  {entry.name} ({entry.backend})  created {created}  "
            f"last seen {seen}  {entry.label or ''}".rstrip()
        )
    noun = "session" if len(found) == 1 else "sessions"
    print(f"{len(found)} live {noun} of user {user_id!r}")
    return 0


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


if __name__ == "__main__":
    sys.exit(main())
