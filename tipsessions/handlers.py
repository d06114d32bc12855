"""Wiring into webapp2: the middleware, the handler mixin, a ready base.

The only rule that matters here is *when* sessions are saved: after the
handler returns, and also when it stops with an HTTP exception below 500
(``self.redirect(url, abort=True)``, ``self.abort(403)``), because those are
ordinary control flow and flash-then-redirect must work. When the handler
fails (any other exception, or a 5xx), nothing is saved: half-done work
must not reach the session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import webapp2
import webob
from webob.exc import WSGIHTTPException

from .errors import ConfigError
from .session import Session
from .store import SessionStore, existing_store, get_store


class SessionMiddleware:
    """Saves the request's sessions and writes its cookies after dispatch."""

    def before_dispatch(self, handler: webapp2.RequestHandler) -> None:
        """Nothing to do: the store is built only if the handler uses it."""

    def after_dispatch(self, handler: webapp2.RequestHandler, response: webob.Response) -> None:
        store = existing_store(handler.request)
        if store is not None:
            store.save_sessions(response)


class SessionMixin:
    """Gives a handler ``session_store`` and ``session``, and runs ``middleware``.

    Put it before ``webapp2.RequestHandler`` in the bases so that its
    ``dispatch`` wraps the handler's.
    """

    #: Objects with ``before_dispatch(handler)`` and/or
    #: ``after_dispatch(handler, response)``, run around every request.
    middleware: Sequence[Any] = ()
    request: webapp2.Request
    response: webob.Response

    @property
    def session_store(self) -> SessionStore:
        """This request's store, created on first use.

        Creating it checks that :class:`SessionMiddleware` is in
        ``middleware``: without it every change would be lost in silence.
        """
        store = existing_store(self.request)
        if store is None:
            if not any(isinstance(m, SessionMiddleware) for m in self.middleware):
                raise ConfigError(
                    f"{type(self).__name__}.middleware",
                    "has no SessionMiddleware, so sessions would never be saved: add "
                    "middleware = [SessionMiddleware()] to the handler class (or derive "
                    "it from tipsessions.BaseHandler)",
                )
            store = get_store(self.request)
        return store

    @property
    def session(self) -> Session:
        """The default session: ``session_store.get_session()``."""
        return self.session_store.get_session()

    def dispatch(self) -> Any:
        name, middleware = type(self).__name__, tuple(self.middleware)
        try:
            befores, afters = _hooks(name, middleware)
        except TypeError:  # a middleware object that cannot be hashed
            befores, afters = _hooks.__wrapped__(name, middleware)
        for before in befores:
            before(self)
        try:
            returned = super().dispatch()  # type: ignore[misc]
        except WSGIHTTPException as stop:
            if stop.code < 500:
                for after in afters:
                    after(self, stop)
            raise
        if afters:
            response = returned if isinstance(returned, webob.Response) else self.response
            if response.status_int < 500:
                for after in afters:
                    after(self, response)
        return returned


Hook = Callable[..., Any]


@lru_cache(maxsize=256)
def _hooks(handler: str, middleware: tuple[Any, ...]) -> tuple[list[Hook], list[Hook]]:
    """The ``before_dispatch`` hooks in order and the ``after_dispatch`` ones reversed.

    Worked out once per handler class and middleware list, not per request.
    """
    befores, afters = [], []
    for item in middleware:
        if isinstance(item, type):
            # tipfy took classes here; ours are instances, built once.
            raise ConfigError(
                f"{handler}.middleware",
                f"lists the class {item.__name__}; list an instance: "
                f"middleware = [{item.__name__}()]",
            )
        before = getattr(item, "before_dispatch", None)
        if before is not None and not _does_nothing(before):
            befores.append(before)
        after = getattr(item, "after_dispatch", None)
        if after is not None:
            afters.append(after)
    return befores, afters[::-1]


def _does_nothing(hook: Hook) -> bool:
    return getattr(hook, "__func__", None) is SessionMiddleware.before_dispatch


class BaseHandler(SessionMixin, webapp2.RequestHandler):  # type: ignore[misc]
    """A ``webapp2.RequestHandler`` with sessions; subclass it."""

    middleware: Sequence[Any] = [SessionMiddleware()]
