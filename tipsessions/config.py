"""Configuration: the defaults, and validation into :class:`Settings`.

Settings live under ``config["tipsessions"]`` of the webapp2 application.
They are checked once, when the first store of an application is built, so a
typo or a missing secret fails loudly on the first request that uses a
session instead of quietly running on a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backends.catalog import BUILTIN_BACKENDS, import_backend
from .backends.options import BackendOptions
from .errors import ConfigError

#: Every common setting and its default. Keys left out of the application's
#: configuration take these values; keys not listed here are refused (typo
#: protection), except the option sections of backends, whose keys and
#: defaults each backend declares (:attr:`Backend.options_class`).
DEFAULTS: dict[str, Any] = {
    #: Required. A string, or a list of strings to rotate keys: the first
    #: signs and encrypts, every one verifies and decrypts.
    "secret_key": None,
    #: Backend of ``get_session()`` when no ``backend`` is given.
    "default_backend": "securecookie",
    #: Cookie name of ``get_session()`` when no ``name`` is given.
    "cookie_name": "session",
    #: Idle timeout in seconds: a session not used for longer reads as new.
    #: ``None`` keeps cookie sessions for as long as the browser keeps the
    #: cookie, and server-side ones for ``server_ttl``.
    "session_max_age": None,
    #: Hard lifetime in seconds from creation; activity never extends it.
    "session_absolute_max_age": None,
    #: A session that is only read is kept alive by re-issuing its cookie (and
    #: touching its server-side expiry) at most this often, in seconds, and
    #: at least every tenth of ``session_max_age``; most read-only requests
    #: therefore send no ``Set-Cookie`` at all.
    "session_refresh_interval": 60,
    #: Idle lifetime in seconds of a server-side record when
    #: ``session_max_age`` is ``None``, so abandoned sessions never pile up.
    "server_ttl": 14 * 24 * 3600,
    #: Seconds an id replaced by ``regenerate_id()`` stays a tombstone: a
    #: request still carrying it reaches no data and sets no cookie.
    "regenerate_grace": 30,
    #: ``"raise"`` turns an unreachable backend server into
    #: :class:`~tipsessions.BackendUnavailable`; ``"degrade"`` logs it and
    #: serves an empty session that is never saved.
    "on_backend_error": "raise",
    #: Attributes of every session cookie; ``get_session(cookie_args=...)``
    #: and ``set_cookie(**cookie_args)`` override them per cookie.
    "cookie_args": {
        "max_age": None,
        "domain": None,
        "path": "/",
        "secure": False,
        "httponly": True,
        "samesite": "Lax",
    },
    #: During a move from ``"webapp2_extras"`` or ``"tipfy"``: session cookies
    #: those libraries signed with one of the secrets are adopted once and
    #: re-issued in tipsessions' format. ``None`` reads only tipsessions' own.
    "legacy_cookies": None,
    #: The user registry behind ``set_user()`` and ``revoke_user()``:
    #: ``{"backend": <a server-side backend>, "check_interval": <seconds>}``.
    #: ``None``: sessions cannot be bound to users.
    "users": None,
    #: Extra or replacement backends: name -> class or ``"dotted.path"``.
    "backends": {},
}

#: The values ``legacy_cookies`` accepts besides ``None``: the libraries
#: whose signed session cookies are adopted (both write the same format).
LEGACY_FORMATS = ("webapp2_extras", "tipfy")

#: Seconds a process trusts what it last read of a user's registry entry
#: when ``users`` leaves ``check_interval`` out.
USERS_CHECK_INTERVAL = 5
#: Backends that cannot hold the user registry, and why.
_NOT_A_REGISTRY = {
    "securecookie": "a cookie backend keeps nothing on the server",
    "encryptedcookie": "a cookie backend keeps nothing on the server",
    "memcache": "memcached evicts entries to make room, and an evicted revocation "
    "epoch would bring revoked cookie sessions back",
}

_COOKIE_ARG_NAMES = frozenset(DEFAULTS["cookie_args"])
_SAMESITE_VALUES = ("Lax", "Strict", "None", None)
# RFC 6265 token characters: anything else breaks the Set-Cookie header.
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class UsersSettings:
    """Where the user registry lives and how long a process trusts a read of it."""

    backend: str
    check_interval: int


@dataclass(frozen=True)
class Settings:
    """The validated settings of one application."""

    secret_keys: tuple[str, ...]
    default_backend: str
    cookie_name: str
    session_max_age: int | None
    session_absolute_max_age: int | None
    session_refresh_interval: int
    server_ttl: int
    regenerate_grace: int
    on_backend_error: str
    legacy_cookies: str | None
    cookie_args: Mapping[str, Any]
    #: name -> class or dotted path, built-ins included.
    backends: Mapping[str, Any]
    #: name -> the options of each backend section the configuration gives,
    #: checked by that backend's options class, defaults filled in. A backend
    #: with no section takes its defaults when it is built.
    backend_options: Mapping[str, BackendOptions]
    #: The user registry; ``None`` when not configured.
    users: UsersSettings | None = None


def load_settings(app_config: Mapping[str, Any] | None) -> Settings:
    """Merge ``app_config["tipsessions"]`` over :data:`DEFAULTS` and check it."""
    user = (app_config or {}).get("tipsessions")
    if user is None:
        raise ConfigError(
            "tipsessions.secret_key",
            'is required: add config["tipsessions"] = {"secret_key": "..."} '
            "to the application's configuration (python -m tipsessions keygen prints a "
            "fresh secret)",
        )
    if not isinstance(user, Mapping):
        raise ConfigError("tipsessions", f"must be a dict, not {type(user).__name__}")

    extra_backends = _backend_table(user.get("backends", {}))
    backends: dict[str, Any] = {**BUILTIN_BACKENDS, **extra_backends}
    for key in user:
        if key not in DEFAULTS and key not in backends:
            raise ConfigError(f"tipsessions.{key}", "unknown setting (a typo?)")

    # Each section is checked by its backend, which is imported for that:
    # a section is given for a backend that is used.
    options = {
        name: import_backend(name, backends[name]).options_class.parse(f"tipsessions.{name}", given)
        for name, given in user.items()
        if name in backends and name not in DEFAULTS
    }
    settings = Settings(
        secret_keys=_secret_keys(user.get("secret_key")),
        default_backend=_choice_of(user, "default_backend", backends),
        cookie_name=check_cookie_name(
            user.get("cookie_name", DEFAULTS["cookie_name"]), "tipsessions.cookie_name"
        ),
        session_max_age=_seconds(user, "session_max_age", optional=True),
        session_absolute_max_age=_seconds(user, "session_absolute_max_age", optional=True),
        session_refresh_interval=_seconds(user, "session_refresh_interval", zero_ok=True),
        server_ttl=_seconds(user, "server_ttl"),
        regenerate_grace=_seconds(user, "regenerate_grace", zero_ok=True),
        on_backend_error=_choice_of(user, "on_backend_error", ("raise", "degrade")),
        legacy_cookies=_legacy_cookies(user.get("legacy_cookies")),
        cookie_args=merge_cookie_args(user.get("cookie_args", {}), "tipsessions.cookie_args"),
        backends=backends,
        backend_options=options,
        users=_users(user.get("users"), backends),
    )
    return settings


def merge_cookie_args(
    given: Any, where: str, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate cookie attributes and lay them over ``base`` (or the defaults)."""
    if not isinstance(given, Mapping):
        raise ConfigError(where, f"must be a dict, not {type(given).__name__}")
    merged = dict(DEFAULTS["cookie_args"] if base is None else base)
    for name, value in given.items():
        if name not in _COOKIE_ARG_NAMES:
            raise ConfigError(f"{where}.{name}", "unknown cookie attribute")
        merged[name] = value
    if merged["max_age"] is not None:
        check_seconds(merged["max_age"], f"{where}.max_age", zero_ok=True)
    for flag in ("secure", "httponly"):
        if not isinstance(merged[flag], bool):
            raise ConfigError(f"{where}.{flag}", "must be True or False")
    for text in ("domain", "path"):
        if merged[text] is not None and not isinstance(merged[text], str):
            raise ConfigError(f"{where}.{text}", "must be a string or None")
    if merged["samesite"] not in _SAMESITE_VALUES:
        raise ConfigError(f"{where}.samesite", 'must be "Lax", "Strict", "None" or None')
    if merged["samesite"] == "None" and not merged["secure"]:
        # Browsers reject SameSite=None without Secure, dropping the cookie.
        raise ConfigError(f"{where}.samesite", 'SameSite="None" needs secure=True')
    return merged


def _secret_keys(value: Any) -> tuple[str, ...]:
    keys = [value] if isinstance(value, str) else value
    if not keys or not isinstance(keys, (list, tuple)):
        raise ConfigError(
            "tipsessions.secret_key",
            "is required: a long random string, or a list of them to rotate keys "
            "(python -m tipsessions keygen prints a fresh one)",
        )
    for key in keys:
        if not isinstance(key, str) or len(key.encode()) < _MIN_SECRET_BYTES:
            raise ConfigError(
                "tipsessions.secret_key",
                f"each secret must be a string of at least {_MIN_SECRET_BYTES} bytes "
                "(python -m tipsessions keygen prints a fresh one)",
            )
    return tuple(keys)


def _legacy_cookies(value: Any) -> str | None:
    if value is not None and value not in LEGACY_FORMATS:
        raise ConfigError(
            "tipsessions.legacy_cookies",
            f"{value!r} is not one of None, {', '.join(map(repr, LEGACY_FORMATS))}",
        )
    return None if value is None else str(value)


def _users(value: Any, backends: Mapping[str, Any]) -> UsersSettings | None:
    if value is None:
        return None
    where = "tipsessions.users"
    if not isinstance(value, Mapping):
        raise ConfigError(
            where, 'must be None or a dict such as {"backend": "redis", "check_interval": 5}'
        )
    for key in value:
        if key not in ("backend", "check_interval"):
            raise ConfigError(f"{where}.{key}", "unknown setting (a typo?)")
    backend = value.get("backend")
    if backend not in backends:
        raise ConfigError(
            f"{where}.backend",
            f"{backend!r} is not a configured backend; the registry needs a server-side "
            "one: redis, datastore, file or memory",
        )
    if backend in _NOT_A_REGISTRY:
        raise ConfigError(
            f"{where}.backend",
            f"{backend!r} cannot hold the user registry: {_NOT_A_REGISTRY[backend]}; "
            "use redis, datastore, file or memory",
        )
    interval = value.get("check_interval", USERS_CHECK_INTERVAL)
    return UsersSettings(
        str(backend), check_seconds(interval, f"{where}.check_interval", zero_ok=True)
    )


def check_cookie_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _COOKIE_NAME.match(value):
        raise ConfigError(where, f"{value!r} is not a valid cookie name")
    return value


def _choice_of(user: Mapping[str, Any], key: str, allowed: Any) -> str:
    value = user.get(key, DEFAULTS[key])
    if value not in allowed:
        raise ConfigError(
            f"tipsessions.{key}", f"{value!r} is not one of {', '.join(map(repr, allowed))}"
        )
    return str(value)


def _seconds(
    user: Mapping[str, Any], key: str, *, optional: bool = False, zero_ok: bool = False
) -> Any:
    value = user.get(key, DEFAULTS[key])
    if value is None and optional:
        return None
    return check_seconds(value, f"tipsessions.{key}", zero_ok=zero_ok)


def check_seconds(value: Any, where: str, *, zero_ok: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
        raise ConfigError(where, f"must be a whole number of seconds, not {value!r}")
    return value


def _backend_table(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError("tipsessions.backends", "must be a dict of name -> class or dotted path")
    for name, target in value.items():
        if not isinstance(name, str) or not (isinstance(target, (str, type))):
            raise ConfigError(f"tipsessions.backends.{name}", "must name a class or dotted path")
    return dict(value)
