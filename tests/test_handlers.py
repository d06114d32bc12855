"""Wiring into webapp2: the mixin, the middleware, and when sessions are saved.

Redirects and aborts below 500 are ordinary control flow, so the session and
buffered cookies go out on the response actually sent; a failing handler
(an exception, or any 5xx) saves nothing. The memory backend is used where
"saves nothing" must be observed on the server, not only in the response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webapp2
import webob

from tests.apps import Browser, CallCounter, ScriptHandler, backend_of
from tipsessions import BaseHandler, SessionMiddleware, SessionMixin, get_store


class MyBase(SessionMixin, webapp2.RequestHandler):
    middleware = [SessionMiddleware()]  # noqa: RUF012 -- spelled as API.md shows it


class MyScriptHandler(MyBase):
    get = post = ScriptHandler.get


class ReturningHandler(BaseHandler):
    """Returns the Response object the script returns, instead of self.response."""

    def get(self, path: str = "") -> Any:
        result = self.app.registry["script"](self)
        if isinstance(result, webob.Response):
            return result
        self.app.registry["result"] = result
        return None


class CookieOnArrival:
    """A custom middleware that buffers a cookie before the handler runs."""

    def before_dispatch(self, handler: webapp2.RequestHandler) -> None:
        get_store(handler.request).set_cookie("arrived", "yes")


class ArrivalHandler(BaseHandler):
    middleware = (SessionMiddleware(), CookieOnArrival())
    get = ScriptHandler.get


def cookie_names(browser: Browser) -> list[str]:
    return [header.split("=", 1)[0] for header in browser.set_cookies()]


@pytest.mark.parametrize("handler", [ScriptHandler, MyScriptHandler], ids=["BaseHandler", "MyBase"])
def test_session_handlers_save_after_a_normal_return(handler: type[Any]) -> None:
    browser = Browser(handler)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    assert cookie_names(browser) == ["session"]
    assert browser(lambda h: h.session["user"]) == "ada"


@pytest.mark.parametrize("handler", [ScriptHandler, MyScriptHandler], ids=["BaseHandler", "MyBase"])
def test_one_store_per_request_created_lazily(handler: type[Any]) -> None:
    browser = Browser(handler)

    def look(h: Any) -> tuple[bool, bool, bool]:
        before = bool(h.request.registry)
        store = h.session_store
        return before, store is h.session_store, store is get_store(h.request)

    assert browser(look) == (False, True, True)


def test_each_request_gets_its_own_store() -> None:
    browser = Browser()
    first = browser(lambda h: h.session_store)
    second = browser(lambda h: h.session_store)
    assert first is not second


def test_self_session_is_the_default_session() -> None:
    browser = Browser()
    assert browser(lambda h: h.session is h.session_store.get_session()) is True


def test_middleware_before_dispatch_builds_nothing() -> None:
    browser = Browser()

    def look(h: Any) -> bool:
        SessionMiddleware().before_dispatch(h)
        return bool(h.request.registry)

    assert browser(look) is False


def test_middleware_after_dispatch_saves_onto_the_given_response() -> None:
    class Manual(webapp2.RequestHandler):
        """Drives the middleware by hand, without the mixin."""

        def get(self, path: str = "") -> webob.Response:
            middleware = SessionMiddleware()
            middleware.before_dispatch(self)
            get_store(self.request).get_session()["n"] = 1
            response = webapp2.Response("manual")
            middleware.after_dispatch(self, response)
            return response

    browser = Browser(Manual)
    browser()
    assert cookie_names(browser) == ["session"]
    assert browser.response.text == "manual"


def test_middleware_after_dispatch_without_a_store_adds_nothing() -> None:
    browser = Browser()
    browser(lambda h: h.response.write("no sessions here"))
    assert browser.set_cookies() == []
    assert "Vary" not in browser.response.headers
    assert "private" not in browser.response.headers.get("Cache-Control", "")


def test_cookie_buffered_in_a_custom_middleware_is_written() -> None:
    browser = Browser(ArrivalHandler)
    browser()
    assert cookie_names(browser) == ["arrived"]
    assert browser.cookie("arrived") == "yes"


def test_flash_then_redirect_shows_the_flash_once_on_the_next_page() -> None:
    browser = Browser()

    def save_and_redirect(h: Any) -> None:
        h.session.add_flash("Saved.", "success")
        h.session_store.set_cookie("seen", "1")
        h.redirect("/done", abort=True)

    browser(save_and_redirect, status=302)
    assert browser.response.headers["Location"].endswith("/done")
    assert sorted(cookie_names(browser)) == ["seen", "session"]
    assert browser(lambda h: h.session.get_flashes(), path="/done") == [("Saved.", "success")]
    assert browser(lambda h: h.session.get_flashes()) == []


def test_abort_below_500_saves_session_and_cookies_onto_the_error_response() -> None:
    browser = Browser(default_backend="memory")

    def forbid(h: Any) -> None:
        h.session["tried"] = True
        h.session_store.set_cookie("seen", "1")
        h.abort(403)

    browser(forbid, status=403)
    assert sorted(cookie_names(browser)) == ["seen", "session"]
    assert browser(lambda h: h.session["tried"]) is True


def test_a_returned_response_object_gets_the_cookies() -> None:
    browser = Browser(ReturningHandler)

    def own_response(h: Any) -> webob.Response:
        h.session["a"] = 1
        h.session_store.set_cookie("extra", "x")
        return webapp2.Response("my own")

    browser(own_response)
    assert browser.response.text == "my own"
    assert sorted(cookie_names(browser)) == ["extra", "session"]
    assert browser(lambda h: h.session["a"]) == 1


def test_a_returned_redirect_gets_the_cookies() -> None:
    browser = Browser(ReturningHandler)

    def redirect(h: Any) -> webob.Response:
        h.session.add_flash("Moved.")
        return h.redirect("/there")

    browser(redirect, status=302)
    assert cookie_names(browser) == ["session"]
    assert browser(lambda h: h.session.get_flashes()) == [("Moved.", None)]


def raise_error(h: Any) -> None:
    raise RuntimeError("boom")


def set_status_500(h: Any) -> None:
    h.response.set_status(500)
    h.response.write("failed")


FAILURES: dict[str, Callable[[Any], Any]] = {
    "unhandled exception": raise_error,
    "abort(500)": lambda h: h.abort(500),
    "abort(503)": lambda h: h.abort(503),
    "status 500 returned": set_status_500,
    "status 502 returned": lambda h: h.response.set_status(502),
}


@pytest.mark.parametrize("fail", FAILURES.values(), ids=FAILURES.keys())
def test_a_failing_handler_saves_nothing(fail: Callable[[Any], Any]) -> None:
    browser = Browser(default_backend="memory")
    browser(lambda h: h.session.__setitem__("a", 1))
    calls = CallCounter(backend_of(browser))

    def change_then_fail(h: Any) -> None:
        h.session["a"] = 2
        h.session.add_flash("never shown")
        h.session_store.set_cookie("extra", "x")
        fail(h)

    browser(change_then_fail, status="5*")
    assert browser.set_cookies() == []
    assert calls.writes() == 0
    assert browser(lambda h: (h.session["a"], h.session.get_flashes())) == (1, [])


def test_a_failing_handler_does_not_start_a_session() -> None:
    browser = Browser()
    browser.fail(lambda h: (h.session.__setitem__("a", 1), raise_error(h)))
    assert browser.cookie() is None


ENDINGS: dict[str, tuple[Callable[[Any], Any], int]] = {
    "normal return": (lambda h: None, 200),
    "redirect(abort=True)": (lambda h: h.redirect("/next", abort=True), 302),
    "abort(403)": (lambda h: h.abort(403), 403),
}


@pytest.mark.parametrize(("end", "status"), ENDINGS.values(), ids=ENDINGS.keys())
def test_saving_twice_emits_one_header_per_cookie_on_the_response_sent(
    end: Callable[[Any], Any], status: int
) -> None:
    browser = Browser()

    def save_early(h: Any) -> None:
        h.session["a"] = 1
        h.session_store.set_cookie("extra", "x")
        h.session_store.save_sessions(h.response)
        end(h)

    browser(save_early, status=status)
    assert sorted(cookie_names(browser)) == ["extra", "session"]
    assert browser.response.headers.getall("Vary") == ["Cookie"]
    assert browser(lambda h: h.session["a"]) == 1


def test_a_change_after_a_manual_save_replaces_the_cookie() -> None:
    browser = Browser()

    def save_then_change(h: Any) -> None:
        h.session["a"] = 1
        h.session_store.save_sessions(h.response)
        h.session["a"] = 2

    browser(save_then_change)
    assert cookie_names(browser) == ["session"]
    assert browser(lambda h: h.session["a"]) == 2
