"""A scripted webapp2 app: each request runs a function the test passes in.

Tests read as a sequence of requests from one browser (WebTest keeps the
cookie jar), with the code each request runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webapp2
import webob.exc
import webtest

from tipsessions import BaseHandler

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
