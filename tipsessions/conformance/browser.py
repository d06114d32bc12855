"""A scripted webapp2 application, and the browser that drives it.

The conformance suite reads as a sequence of requests from one browser:
each request runs a function the test passes in, and WebTest keeps the
cookie jar between them. The backend under test is the real one the
application builds from its settings; the helpers here only look at it
(count its storage calls, sign a cookie with its keys), never stand in for
it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import webapp2
import webob.exc
import webtest

from ..backends import Backend, ServerBackend
from ..cookies import Keyring
from ..handlers import BaseHandler
from ..runtime import Runtime

#: The secret a :class:`Browser`'s application signs with, unless told otherwise.
SECRET = "test-secret-0123456789abcdef-0123456789"

#: The record calls of a :class:`~tipsessions.backends.ServerBackend`, each a round trip.
STORAGE_CALLS = ("read", "put", "update", "delete", "touch")


class ScriptHandler(BaseHandler):
    """Runs the script of the current request; keeps what it returned."""

    def get(self, path: str = "") -> Any:
        script = self.app.registry["script"]
        self.app.registry["result"] = script(self)

    post = get


class Browser:
    """One client of a fresh app built from ``settings`` (``secret_key`` added)."""

    def __init__(self, handler: type[webapp2.RequestHandler] = ScriptHandler, **settings: Any):
        settings.setdefault("secret_key", SECRET)
        self.app = webapp2.WSGIApplication(
            [webapp2.Route("/<path:.*>", handler)], config={"tipsessions": settings}
        )
        self.web = webtest.TestApp(self.app)
        self.response: webtest.TestResponse | None = None

    def __call__(
        self,
        script: Callable[[Any], Any] = lambda h: None,
        status: int | str = 200,
        path: str = "/",
        **kwargs: Any,
    ) -> Any:
        """Run ``script(handler)`` in a request; return what it returned."""
        self.app.registry["script"] = script
        self.app.registry["result"] = None
        self.response = self.web.get(path, status=status, **kwargs)
        return self.app.registry["result"]

    def fail(self, script: Callable[[Any], Any], path: str = "/", **kwargs: Any) -> BaseException:
        """Run ``script`` in a request that must end in a 500; return the exception behind it."""
        causes: list[BaseException] = []

        def keep(request: Any, response: Any, error: BaseException) -> Any:
            causes.append(error)
            # A fresh response, as webapp2 sends when no error handler is set.
            return webob.exc.HTTPInternalServerError()

        self.app.error_handlers[500] = keep
        try:
            self(script, status=500, path=path, **kwargs)
        finally:
            del self.app.error_handlers[500]
        (cause,) = causes
        return cause

    def set_cookies(self) -> list[str]:
        """The ``Set-Cookie`` headers of the last response."""
        assert self.response is not None
        headers: list[str] = self.response.headers.getall("Set-Cookie")
        return headers

    def cookie(self, name: str = "session") -> str | None:
        """The value the browser holds for cookie ``name``, if any."""
        value: str | None = self.web.cookies.get(name)
        return value

    def set_cookie(self, name: str, value: str) -> None:
        """From now on send ``value`` as the only cookie ``name`` (a replay or a forgery).

        The one the app set is removed first, or the request would carry both.
        """
        jar = self.web.cookiejar
        for cookie in [c for c in jar if c.name == name]:
            jar.clear(cookie.domain, cookie.path, cookie.name)
        self.web.set_cookie(name, value)

    def forget_cookies(self) -> None:
        self.web.reset()


def expired_cookie(header: str) -> bool:
    """Whether a ``Set-Cookie`` header expires its cookie."""
    return "Max-Age=0" in header


def backend_of(browser: Browser, name: str | None = None) -> Any:
    """The real backend instance serving ``browser``'s app."""
    runtime = Runtime.of(browser.app)
    return runtime.backend(name or runtime.settings.default_backend)


class CallCounter(collections.Counter[str]):
    """Counts storage calls on a real backend; the server still does the work.

    Only a :class:`~tipsessions.backends.ServerBackend` has storage calls;
    on any other backend the count stays empty.
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        if not isinstance(backend, ServerBackend):
            return
        for call in STORAGE_CALLS:
            original = getattr(backend, call)

            def counted(*args: Any, _call: str = call, _original: Any = original) -> Any:
                self[_call] += 1
                return _original(*args)

            setattr(backend, call, counted)

    def writes(self) -> int:
        return self["put"] + self["update"] + self["delete"] + self["touch"]


def rotate_secrets(browser: Browser, *secrets: str) -> None:
    """Give the running app a new secret list, as a redeploy would.

    Done in place so that the memory backend keeps its sessions, which a
    real restart would lose.
    """
    runtime = Runtime.of(browser.app)
    runtime.keyring = Keyring(secrets)
    for backend in runtime._backends.values():
        backend.keyring = runtime.keyring


def plant_session_id(browser: Browser, session_id: str, cookie_name: str = "session") -> None:
    """Send a genuinely signed cookie for an id the server never issued."""
    keyring = Runtime.of(browser.app).keyring
    browser.set_cookie(cookie_name, keyring.sign(cookie_name, session_id.encode(), compress=False))
