"""The per-request store: named sessions, buffered cookies, one save.

A :class:`SessionStore` is created lazily, the first time a handler asks for
a session or a cookie, so a request that never touches sessions costs
nothing. Sessions are opened on first use and saved together, after the
handler, onto the response actually sent; cookie writes wait in a buffer
until then, because the response does not exist while the handler runs.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import webapp2
import webob

from .backends.base import Backend, Lifetime, log_rejected
from .config import (
    BACKEND_EXTRAS,
    BUILTIN_BACKENDS,
    Settings,
    check_cookie_name,
    check_seconds,
    load_settings,
    merge_cookie_args,
)
from .cookies import BadCookie, Keyring
from .errors import BackendUnavailable, ConfigError
from .headers import add_vary_cookie, cookie_values, make_private, write_cookies
from .legacy import LegacyCookies
from .record import BROWSER_SESSION, check_json, decode_json, dumps
from .session import Session

log = logging.getLogger("tipsessions")

# RFC 6265's cookie-octets: anything else (a space, a comma, a semicolon, a
# quote, non-ASCII) breaks or splits the header. Its quoted form is left
# out: WebOb refuses it and browsers keep the quotes as part of the value.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")

_STORE_KEY = "tipsessions.store"
_RUNTIME_KEY = "tipsessions.runtime"
_runtime_lock = threading.Lock()


class _Default:
    def __repr__(self) -> str:
        return "<config>"


#: Stands for "the configured value" in signatures.
DEFAULT: Any = _Default()


class Runtime:
    """What one application's requests share: settings, keys and backends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring = Keyring(settings.secret_keys)
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        #: Cookie names already checked, so each is validated once, not per request.
        self.checked_names: set[str] = set()
        self.default_lifetime = lifetime_of(
            settings, settings.session_max_age, settings.cookie_args
        )
        # Build the default backend now, so a missing extra or a bad class
        # is reported when the first store is built, not mid-request.
        self.backend(settings.default_backend)

    @classmethod
    def of(cls, app: webapp2.WSGIApplication) -> Runtime:
        runtime: Runtime | None = app.registry.get(_RUNTIME_KEY)
        if runtime is None:
            with _runtime_lock:
                runtime = app.registry.get(_RUNTIME_KEY)
                if runtime is None:
                    runtime = app.registry[_RUNTIME_KEY] = cls(load_settings(app.config))
        return runtime

    def backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            with self._lock:
                backend = self._backends.get(name)
                if backend is None:
                    backend = self._backends[name] = self._build(name)
        return backend

    def _build(self, name: str) -> Backend:
        target = self.settings.backends.get(name)
        if target is None:
            raise ConfigError(
                name,
                f"unknown backend {name!r}; configured backends: "
                f"{', '.join(sorted(self.settings.backends))} "
                '(add your own under config["tipsessions"]["backends"])',
            )
        cls = _import_backend(name, target)
        backend = cls(name, self.settings.backend_options.get(name, {}), self.keyring)
        if self.settings.legacy_cookies is not None:
            backend.legacy = LegacyCookies(self.settings.secret_keys)
        return backend


def _import_backend(name: str, target: Any) -> type[Backend]:
    # Named as the user knows it: by its name, or by the entry they added.
    where = name if BUILTIN_BACKENDS.get(name) == target else f"tipsessions.backends.{name}"
    if isinstance(target, str):
        module_name, _, attribute = target.replace(":", ".").rpartition(".")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except ImportError as error:
            extra = next(
                (BACKEND_EXTRAS.get(n) for n, t in BUILTIN_BACKENDS.items() if t == target), None
            )
            if extra is not None:
                raise ConfigError(
                    where,
                    f"the {name} backend needs {error.name or 'a module'!r}, which is not "
                    f"installed: install tipsessions with its {extra!r} extra "
                    f"(pip install '.[{extra}]' in a tipsessions checkout)",
                ) from error
            raise ConfigError(where, f"cannot import {target!r}: {error}") from error
        except AttributeError as error:
            raise ConfigError(where, f"cannot import {target!r}: {error}") from error
    if not (isinstance(target, type) and issubclass(target, Backend)):
        raise ConfigError(where, f"{target!r} is not a tipsessions.backends.base.Backend class")
    return target


@dataclass
class _Opened:
    session: Session
    backend: Backend
    lifetime: Lifetime
    cookie_args: Mapping[str, Any]
    #: The backend failed and ``on_backend_error`` is "degrade": never save.
    degraded: bool = False


class SessionStore:
    """All sessions and cookies of one request.

    Get it with :func:`get_store` (or ``handler.session_store``); building
    one directly is for tests and for code outside webapp2's dispatch.
    ``config`` replaces the application's ``config["tipsessions"]``.
    """

    def __init__(self, request: webapp2.Request, config: Mapping[str, Any] | None = None) -> None:
        self.request = request
        if config is None:
            # A request built by hand (Request.blank) has no app of its own.
            self.runtime = Runtime.of(request.app or webapp2.get_app())
        else:
            self.runtime = Runtime(load_settings({"tipsessions": config}))
        self.settings = self.runtime.settings
        self._sessions: dict[str, _Opened] = {}
        self._cookies: dict[str, tuple[str | None, Mapping[str, Any]]] = {}

    def get_session(
        self,
        name: str | None = None,
        backend: str | None = None,
        max_age: int | None = DEFAULT,
        cookie_args: Mapping[str, Any] | None = None,
    ) -> Session:
        """The session stored under cookie ``name``, loaded on first use.

        ``backend`` names a configured backend, ``max_age`` overrides
        ``session_max_age`` and ``cookie_args`` the cookie attributes, for
        this session only. The same name gives the same object for the rest
        of the request.
        """
        name = name or self.settings.cookie_name
        opened = self._sessions.get(name)
        if opened is not None:
            if backend is not None and backend != opened.backend.name:
                raise ConfigError(
                    backend,
                    f"session {name!r} is already open on the {opened.backend.name!r} "
                    f"backend in this request, not {backend!r}",
                )
            return opened.session
        runtime = self.runtime
        if name not in runtime.checked_names:
            runtime.checked_names.add(check_cookie_name(name, "name"))
        chosen = runtime.backend(backend or self.settings.default_backend)
        if cookie_args is None and max_age is DEFAULT:
            args, lifetime = self.settings.cookie_args, runtime.default_lifetime
        else:
            args = self._cookie_args(cookie_args, f"get_session({name!r}).cookie_args")
            if max_age is DEFAULT:
                max_age = self.settings.session_max_age
            elif max_age is not None:
                max_age = check_seconds(max_age, f"get_session({name!r}).max_age")
            lifetime = lifetime_of(self.settings, max_age, args)
        try:
            session = chosen.load(name, cookie_values(self.request.environ, name), lifetime)
            degraded = False
        except BackendUnavailable as error:
            if self.settings.on_backend_error != "degrade":
                raise
            log.error("%s; serving an empty session that will not be saved", error)
            session, degraded = Session(), True
        self._sessions[name] = _Opened(session, chosen, lifetime, args, degraded)
        return session

    def _cookie_args(self, given: Mapping[str, Any] | None, where: str) -> Mapping[str, Any]:
        if not given:
            return self.settings.cookie_args
        return merge_cookie_args(given, where, base=self.settings.cookie_args)

    # -- plain and signed cookies -------------------------------------------

    def set_cookie(self, name: str, value: str, **cookie_args: Any) -> None:
        """Set a cookie on the response; the last call for a name wins.

        Attributes default to the configured ``cookie_args``.
        """
        check_cookie_name(name, "name")
        if not isinstance(value, str):
            raise TypeError(f"cookie values are strings, not {type(value).__name__}")
        if not _COOKIE_VALUE.fullmatch(value):
            raise ValueError(
                f"cookie {name!r}: a cookie value holds printable ASCII except spaces, "
                "'\"', ',', ';' and '\\'; encode it first (urllib.parse.quote, base64) "
                "or store it with set_secure_cookie"
            )
        self._cookies[name] = (value, self._cookie_args(cookie_args, "set_cookie"))

    def delete_cookie(self, name: str, path: str = "/", domain: str | None = None) -> None:
        """Expire a cookie on the response; the last call for a name wins."""
        check_cookie_name(name, "name")
        args = {**self.settings.cookie_args, "path": path, "domain": domain}
        self._cookies[name] = (None, args)

    def get_secure_cookie(self, name: str, max_age: int | None = DEFAULT) -> dict[str, Any] | None:
        """The dict stored by :meth:`set_secure_cookie`, or ``None``.

        ``None`` also for a cookie that was tampered with, signed under
        another name, or is older than ``max_age`` (default
        ``session_max_age``) seconds.
        """
        if max_age is DEFAULT:
            max_age = self.settings.session_max_age
        reason = ""
        for value in cookie_values(self.request.environ, name):
            try:
                payload, _ = self.runtime.keyring.unsign(name, value, max_age)
                data = decode_json(payload)
            except (BadCookie, ValueError) as error:
                reason = str(error) or type(error).__name__
                continue
            if isinstance(data, dict):
                return data
            reason = "not a dict"
        if reason:
            log_rejected("secure cookie", name, reason)
        return None

    def set_secure_cookie(self, name: str, value: Mapping[str, Any], **cookie_args: Any) -> None:
        """Set a signed, timestamped cookie holding a JSON dict."""
        if not isinstance(value, Mapping):
            raise TypeError(f"secure cookies hold a dict, not {type(value).__name__}")
        value = dict(value)
        check_json(name, value)
        self.set_cookie(name, self.runtime.keyring.sign(name, dumps(value)), **cookie_args)

    # -- saving --------------------------------------------------------------

    def save_sessions(self, response: webob.Response) -> None:
        """Save every changed session and write the buffered cookies.

        Safe to call more than once: what was saved is not saved again and a
        cookie is never written twice to one response.
        """
        for name, opened in self._sessions.items():
            if opened.degraded:
                continue
            session = opened.session
            modified = session.modified
            try:
                update = opened.backend.save(name, session, opened.lifetime)
            except BackendUnavailable as error:
                if self.settings.on_backend_error != "degrade":
                    raise
                log.error("%s; the %r session was not saved", error, name)
                continue
            if modified:
                session.saved()
            if update is not None:
                self._cookies[name] = (update.value, session_cookie_args(opened, session.max_age))
        if self._sessions:
            add_vary_cookie(response)
        if self._cookies:
            make_private(response)
            # Kept, not cleared: a later save may be onto another response (an
            # abort() after a manual save) and that one must carry them too.
            write_cookies(response, self._cookies)


def session_cookie_args(opened: _Opened, max_age: int | None) -> Mapping[str, Any]:
    """The cookie attributes of a session, with its own ``set_max_age()`` choice."""
    if max_age is None:
        return opened.cookie_args
    return {**opened.cookie_args, "max_age": None if max_age == BROWSER_SESSION else max_age}


def lifetime_of(settings: Settings, idle: int | None, cookie_args: Mapping[str, Any]) -> Lifetime:
    return Lifetime(
        idle=idle,
        absolute=settings.session_absolute_max_age,
        refresh_interval=settings.session_refresh_interval,
        cookie_max_age=cookie_args["max_age"],
        server_ttl=settings.server_ttl,
        regenerate_grace=settings.regenerate_grace,
    )


def get_store(request: webapp2.Request | None = None) -> SessionStore:
    """The request's :class:`SessionStore`, created on first use.

    ``request`` defaults to webapp2's current request.
    """
    if request is None:
        request = webapp2.get_request()
    store: SessionStore | None = request.registry.get(_STORE_KEY)
    if store is None:
        store = request.registry[_STORE_KEY] = SessionStore(request)
    return store


def existing_store(request: webapp2.Request) -> SessionStore | None:
    """The request's store if anything created it, without creating one."""
    store: SessionStore | None = request.registry.get(_STORE_KEY)
    return store
