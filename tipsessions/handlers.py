"""Wiring into webapp2: the middleware, the handler mixin, a ready base.

The only rule that matters here is *when* sessions are saved: after the
handler returns, and also when it stops with an HTTP exception below 500
(``self.redirect(url, abort=True)``, ``self.abort(403)``), because those are
ordinary control flow and flash-then-redirect must work. When the handler
fails (any other exception, or a 5xx), nothing is saved: half-done work
must not reach the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import webapp2
import webob
from webob.exc import WSGIHTTPException

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
        """This request's store, created on first use."""
        return get_store(self.request)

    @property
    def session(self) -> Session:
        """The default session: ``session_store.get_session()``."""
        return self.session_store.get_session()

    def dispatch(self) -> Any:
        for middleware in self.middleware:
            before = getattr(middleware, "before_dispatch", None)
            if before is not None:
                before(self)
        try:
            returned = super().dispatch()  # type: ignore[misc]
        except WSGIHTTPException as stop:
            if stop.code < 500:
                self._after_dispatch(stop)
            raise
        response = returned if isinstance(returned, webob.Response) else self.response
        if response.status_int < 500:
            self._after_dispatch(response)
        return returned

    def _after_dispatch(self, response: webob.Response) -> None:
        for middleware in reversed(self.middleware):
            after = getattr(middleware, "after_dispatch", None)
            if after is not None:
                after(self, response)


class BaseHandler(SessionMixin, webapp2.RequestHandler):  # type: ignore[misc]
    """A ``webapp2.RequestHandler`` with sessions; subclass it."""

    middleware: Sequence[Any] = [SessionMiddleware()]
