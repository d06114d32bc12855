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
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._version import __version__
from .commands import new_secret, run_purge, run_revoke, run_sessions
from .errors import ConfigError, SessionError

#: Names the configuration module when ``--config`` is left out.
CONFIG_VARIABLE = "TIPSESSIONS_CONFIG"

#: Each command's one-line help, then its description.
COMMANDS = {
    "purge": (
        "delete expired sessions of a file or datastore backend",
        "Delete the expired sessions of a file or datastore backend.",
    ),
    "revoke": (
        "sign a user out everywhere, cookie sessions included",
        "End every session of a user (or one, with --session): server-side "
        "sessions at once, cookie sessions within the registry's check_interval.",
    ),
    "sessions": (
        "list a user's live sessions",
        "List the live sessions of a user: fingerprint, cookie name, backend, "
        "when created and last seen (UTC), and label.",
    ),
    "keygen": (
        "print a fresh secret for secret_key",
        "Print a fresh random secret (256 bits) for the secret_key setting.",
    ),
}


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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, argparse.ArgumentParser] = {
        name: subparsers.add_parser(name, help=summary, description=description)
        for name, (summary, description) in COMMANDS.items()
    }
    purge, revoke, sessions = commands["purge"], commands["revoke"], commands["sessions"]
    purge.add_argument(
        "--backend", required=True, help="a configured backend name: file or datastore"
    )
    _config_option(purge)
    purge.add_argument(
        "--batch-size",
        type=_positive,
        default=500,
        help="sessions deleted per batch (default: 500)",
    )
    for command in (revoke, sessions):
        command.add_argument("--user", required=True, help="the user id given to set_user()")
    revoke.add_argument(
        "--session",
        metavar="FINGERPRINT",
        help="end only this session (fingerprints are listed by the sessions command)",
    )
    _config_option(revoke)
    _config_option(sessions)
    return parser, commands


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
    command = commands[args.command]
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "keygen":
        print(new_secret())
        return 0
    if not args.config:
        command.error(f"--config is required when {CONFIG_VARIABLE} is not set")
    try:
        if args.command == "purge":
            return run_purge(args.config, args.backend, args.batch_size)
        try:
            if args.command == "revoke":
                return run_revoke(args.config, args.user, args.session)
            return run_sessions(args.config, args.user)
        except (TypeError, ValueError) as error:
            # A user id that is not one: the command's help says what it takes.
            command.error(str(error))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SessionError as error:
        # A server is unreachable, or a lock stayed taken: worth a retry.
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
