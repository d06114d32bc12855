"""A scripted webapp2 app: each request runs a function the test passes in.

Tests read as a sequence of requests from one browser (WebTest keeps the
cookie jar), with the code each request runs inline.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import webapp2
import webob.exc
import webtest

from tipsessions import BaseHandler
from tipsessions.backends import ServerBackend
from tipsessions.config import load_settings
from tipsessions.cookies import Keyring
from tipsessions.runtime import Runtime

SECRET = "test-secret-0123456789abcdef-0123456789"


class ScriptHandler(BaseHandler):
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
        assert self.response is not None
        return self.response.headers.getall("Set-Cookie")

    def cookie(self, name: str = "session") -> str | None:
        return self.web.cookies.get(name)

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


STORAGE_CALLS = ("read", "put", "update", "delete", "touch")


def backend_of(browser: Browser, name: str | None = None) -> Any:
    """The real backend instance serving ``browser``'s app."""
    runtime = Runtime.of(browser.app)
    return runtime.backend(name or runtime.settings.default_backend)


class CallCounter(collections.Counter[str]):
    """Counts storage calls on a real backend; the server still does the work."""

    def __init__(self, backend: Any) -> None:
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


def store(key: str, value: Any) -> Callable[[Any], None]:
    """A request script that stores ``value`` under ``key`` in the default session."""
    return lambda h: h.session.__setitem__(key, value)


def stored_key(browser: Browser, cookie_name: str = "session") -> str:
    """The storage key on the server that the browser's session cookie points to."""
    cookie = browser.cookie(cookie_name)
    assert cookie is not None
    session_id, _ = Runtime.of(browser.app).keyring.unsign(cookie_name, cookie, None)
    return str(backend_of(browser).storage_key(session_id.decode()))


def rotate_secrets(browser: Browser, *secrets: str) -> None:
    """Give the running app a new secret list, as a redeploy would.

    Done in place so that the memory backend keeps its sessions, which a
    real restart would lose.
    """
    runtime = Runtime.of(browser.app)
    runtime.keyring = Keyring(secrets)
    for backend in runtime._backends.values():
        backend.keyring = runtime.keyring


def build_backend(name: str, **options: Any) -> Any:
    """Backend ``name`` with these options, built as an app builds it, outside any app."""
    settings = load_settings({"tipsessions": {"secret_key": SECRET, name: options}})
    return Runtime(settings).backend(name)


def plant_session_id(browser: Browser, session_id: str, cookie_name: str = "session") -> None:
    """Send a genuinely signed cookie for an id the server never issued."""
    keyring = Runtime.of(browser.app).keyring
    browser.set_cookie(cookie_name, keyring.sign(cookie_name, session_id.encode(), compress=False))
