"""The per-request store: named sessions, buffered cookies, one save.

A :class:`SessionStore` is created lazily, the first time a handler asks for
a session or a cookie, so a request that never touches sessions costs
nothing. Sessions are opened on first use and saved together, after the
handler, onto the response actually sent; cookie writes wait in a buffer
until then, because the response does not exist while the handler runs.
A handler's own cookies go through the same buffer
(:mod:`tipsessions.plain_cookies`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import webapp2
import webob

from .backends.base import Lifetime
from .config import check_cookie_name, check_seconds
from .errors import BackendUnavailable, ConfigError, SessionConflict
from .headers import add_vary_cookie, cookie_values, make_private, write_cookies
from .opened import Opened
from .plain_cookies import DEFAULT as DEFAULT
from .plain_cookies import PlainCookies
from .runtime import Runtime, lifetime_of
from .session import Session
from .signout import UserSession
from .signout import revoke_session as _revoke_session
from .signout import revoke_user as _revoke_user
from .signout import user_sessions as _user_sessions
from .users import admitted, after_save, attach

log = logging.getLogger("tipsessions")

_STORE_KEY = "tipsessions.store"


class SessionStore(PlainCookies):
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
            self.runtime = Runtime.for_config(config)
        self.settings = self.runtime.settings
        self._sessions: dict[str, Opened] = {}
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
        values = cookie_values(self.request.environ, name)
        legacy: list[str] = []
        if runtime.legacy is not None and values:
            # Only the old libraries' format holds a "|": those values are
            # the adoption's to judge, and to log.
            legacy = [value for value in values if "|" in value]
            values = [value for value in values if "|" not in value]
        try:
            loaded = chosen.load(name, values, lifetime)
            revoked = runtime.users is not None and not admitted(runtime.users, loaded, chosen)
        except (BackendUnavailable, SessionConflict) as error:
            if self.settings.on_backend_error != "degrade":
                raise
            log.error("%s; serving an empty session that will not be saved", error)
            session = Session(degraded=True)
            opened = self._sessions[name] = Opened(
                session, chosen, None, lifetime, args, degraded=True
            )
            if runtime.users is not None:
                attach(runtime.users, self.settings, name, opened, False)
            return session
        adopted = False
        if loaded.record is not None:
            session = Session(loaded.record, new=False)
        elif legacy:
            session = self._adopt_legacy(chosen.name, name, legacy, lifetime)
            adopted = not session.new
        else:
            session = Session()
        opened = self._sessions[name] = Opened(
            session, chosen, loaded.handle, lifetime, args, False, adopted
        )
        if runtime.users is not None:
            attach(runtime.users, self.settings, name, opened, revoked)
        return session

    def _adopt_legacy(
        self, backend: str, name: str, values: list[str], lifetime: Lifetime
    ) -> Session:
        """A session from a cookie of the libraries tipsessions replaces, if one reads."""
        assert self.runtime.legacy is not None
        record = self.runtime.legacy.adopt(backend, name, values, lifetime)
        if record is None:
            return Session()
        session = Session(record, new=False)
        # Saved whatever the handler does: the cookie goes out in our format.
        session.modified = True
        return session

    def fingerprint(self, name: str | None = None) -> str | None:
        """A short mark of the stored session behind session ``name``, or ``None``.

        Server-side sessions have one once saved; it changes when the id
        does (``regenerate_id()``), and gives nothing away about the id.
        Cookie sessions have none.
        """
        opened = self._sessions.get(name or self.settings.cookie_name)
        if opened is None or opened.degraded:
            return None
        return opened.backend.fingerprint(opened.handle)

    def user_sessions(self, user_id: str) -> list[UserSession]:
        """The user's live sessions, most recently used first, for a "your devices" page."""
        return _user_sessions(self.runtime, self._open_sessions, user_id)

    def revoke_user(self, user_id: str, keep_current: bool = False) -> int:
        """End every session of the user, cookie sessions included; return how many.

        ``keep_current`` keeps this request's own session ("sign out my other
        devices").
        """
        return _revoke_user(self.runtime, self._open_sessions, user_id, keep_current)

    def revoke_session(self, user_id: str, fingerprint: str) -> bool:
        """End one session of the user, named by its fingerprint; False if none was live."""
        return _revoke_session(self.runtime, self._open_sessions, user_id, fingerprint)

    def _open_sessions(self) -> list[Opened]:
        """This request's open sessions, the default one opened first: "this device"."""
        self.get_session()
        return list(self._sessions.values())

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
                result = opened.backend.save(name, opened.handle, session, opened.lifetime)
            except (BackendUnavailable, SessionConflict) as error:
                if self.settings.on_backend_error != "degrade":
                    raise
                log.error("%s; the %r session was not saved", error, name)
                continue
            if self.runtime.users is not None:
                after_save(opened, result)
            if modified:
                session.saved()
            if result.changes_cookie:
                self._cookies[name] = (result.value, opened.session_cookie_args())
            elif opened.adopted and session.to_record().is_empty():
                self._cookies[name] = (None, opened.cookie_args)
        if self._sessions:
            add_vary_cookie(response)
        if self._cookies:
            make_private(response)
            # Kept, not cleared: a later save may be onto another response (an
            # abort() after a manual save) and that one must carry them too.
            write_cookies(response, self._cookies)


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
