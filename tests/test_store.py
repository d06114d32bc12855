"""The per-request SessionStore: access outside handlers, named sessions, lifetimes.

Expiry is checked against replayed cookies: a client (or a thief) can keep
an old cookie value and send it again, so deadlines must come from data the
server signed or encrypted, not from the browser dropping the cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
import webapp2
import webtest

import tipsessions
from tests.apps import SECRET, Browser, CallCounter, backend_of
from tipsessions import ConfigError, SessionTooLarge, get_store

BACKENDS = ["securecookie", "encryptedcookie", "memory"]
COOKIE_BACKENDS = ["securecookie", "encryptedcookie"]


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_900_000_000, tick=True) as traveller:
        yield traveller


def count_visits(session: tipsessions.Session) -> webapp2.Response:
    session["visits"] = session.get("visits", 0) + 1
    return webapp2.Response(str(session["visits"]))


def explicit_request(request: webapp2.Request) -> webapp2.Response:
    store = get_store(request)
    response = count_visits(store.get_session())
    store.save_sessions(response)
    return response


def current_request(request: webapp2.Request) -> webapp2.Response:
    store = get_store()  # webapp2.get_request() finds it
    assert store is get_store(request)
    response = count_visits(store.get_session())
    store.save_sessions(response)
    return response


@pytest.mark.parametrize("path", ["/explicit", "/current"])
def test_get_store_in_a_plain_function_handler(path: str) -> None:
    app = webapp2.WSGIApplication(
        [webapp2.Route("/explicit", explicit_request), webapp2.Route("/current", current_request)],
        config={"tipsessions": {"secret_key": SECRET}},
    )
    client = webtest.TestApp(app)
    assert [client.get(path).text for _ in range(3)] == ["1", "2", "3"]


def test_get_store_returns_the_handlers_store() -> None:
    browser = Browser()
    assert browser(lambda h: get_store() is get_store(h.request) is h.session_store) is True


def test_same_name_gives_the_same_object_within_a_request() -> None:
    browser = Browser()

    def open_twice(h: Any) -> bool:
        store = h.session_store
        cart = store.get_session("cart")
        return cart is store.get_session("cart") is store.get_session("cart", "securecookie")

    assert browser(open_twice) is True


def test_default_session_is_named_by_cookie_name() -> None:
    browser = Browser(cookie_name="sid")
    assert browser(lambda h: h.session is h.session_store.get_session("sid")) is True


def test_several_named_sessions_on_several_backends_each_have_a_cookie() -> None:
    browser = Browser()

    def fill(h: Any) -> None:
        store = h.session_store
        h.session["user"] = "ada"
        store.get_session("prefs", backend="encryptedcookie")["theme"] = "dark"
        store.get_session("cart", backend="memory")["items"] = [42]

    browser(fill)
    names = sorted(header.split("=", 1)[0] for header in browser.set_cookies())
    assert names == ["cart", "prefs", "session"]

    def read(h: Any) -> list[dict[str, Any]]:
        store = h.session_store
        return [
            dict(h.session),
            dict(store.get_session("prefs", backend="encryptedcookie")),
            dict(store.get_session("cart", backend="memory")),
        ]

    assert browser(read) == [{"user": "ada"}, {"theme": "dark"}, {"items": [42]}]


def test_a_name_reopened_on_another_backend_is_a_config_error() -> None:
    browser = Browser()

    def reopen(h: Any) -> ConfigError:
        h.session_store.get_session("cart", backend="memory")
        with pytest.raises(ConfigError) as caught:
            h.session_store.get_session("cart", backend="securecookie")
        return caught.value

    error = browser(reopen)
    assert "'cart'" in str(error)
    assert "memory" in str(error)


def test_a_session_name_that_is_no_cookie_name_is_refused() -> None:
    browser = Browser()

    def open_bad(h: Any) -> None:
        with pytest.raises(ConfigError):
            h.session_store.get_session("my cart")

    browser(open_bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_replayed_cookie_dies_at_its_idle_deadline(
    backend: str, clock: time_machine.Traveller
) -> None:
    browser = Browser(default_backend=backend, session_max_age=100)
    browser(lambda h: h.session.__setitem__("a", 1))
    old = browser.cookie() or ""
    clock.shift(60)
    browser(lambda h: h.session.__setitem__("a", 2))  # the session goes on
    current = browser.cookie() or ""
    clock.shift(30)
    browser.set_cookie("session", old)
    assert browser(lambda h: h.session.new) is False  # 90 s old: still inside its window
    clock.shift(20)
    browser.set_cookie("session", old)
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    browser.set_cookie("session", current)  # 50 s old: alive
    assert browser(lambda h: h.session["a"]) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_replayed_cookie_dies_at_the_absolute_deadline(
    backend: str, clock: time_machine.Traveller
) -> None:
    browser = Browser(default_backend=backend, session_absolute_max_age=300)
    browser(lambda h: h.session.__setitem__("a", 1))
    old = browser.cookie() or ""
    for _ in range(2):
        clock.shift(100)
        browser(lambda h: h.session.__setitem__("a", h.session["a"] + 1))
    latest = browser.cookie() or ""
    clock.shift(50)
    browser.set_cookie("session", old)
    assert browser(lambda h: h.session.new) is False  # 250 s after creation
    clock.shift(51)
    for replayed in (old, latest):  # the latest write did not extend the lifetime
        browser.set_cookie("session", replayed)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


@pytest.mark.parametrize(
    ("settings", "quiet_after", "refresh_after"),
    [({}, 30, 61), ({"session_refresh_interval": 5}, 3, 8)],
    ids=["default interval", "interval of 5 s"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_requests_refresh_the_cookie_once_the_interval_passed(
    backend: str,
    settings: dict[str, Any],
    quiet_after: int,
    refresh_after: int,
    clock: time_machine.Traveller,
) -> None:
    browser = Browser(default_backend=backend, session_max_age=1000, **settings)
    browser(lambda h: h.session.__setitem__("a", [1]))
    first = browser.cookie()
    calls = CallCounter(backend_of(browser))
    clock.shift(quiet_after)
    assert browser(lambda h: h.session["a"]) == [1]
    assert browser.set_cookies() == []
    clock.shift(refresh_after - quiet_after)
    assert browser(lambda h: h.session["a"]) == [1]
    (header,) = browser.set_cookies()
    assert header.startswith("session=") and "Max-Age=0" not in header
    assert browser.cookie() != first
    assert calls["put"] + calls["update"] == 0  # the data was not rewritten
    # The re-issued cookie restarted the idle timer: past the first deadline,
    # inside the new one.
    clock.shift(995)
    assert browser(lambda h: (h.session.new, h.session["a"])) == (False, [1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_session_max_age_overrides_the_idle_timeout(
    backend: str, clock: time_machine.Traveller
) -> None:
    browser = Browser(default_backend=backend, session_max_age=50)

    def both(h: Any) -> Any:
        return h.session, h.session_store.get_session("long", max_age=1000)

    browser(lambda h: [s.__setitem__("a", 1) for s in both(h)])
    clock.shift(51)
    assert browser(lambda h: [s.get("a") for s in both(h)]) == [None, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_session_max_age_adds_an_idle_timeout(
    backend: str, clock: time_machine.Traveller
) -> None:
    browser = Browser(default_backend=backend)

    def both(h: Any) -> Any:
        return h.session, h.session_store.get_session("short", max_age=50)

    browser(lambda h: [s.__setitem__("a", 1) for s in both(h)])
    clock.shift(51)
    assert browser(lambda h: [s.get("a") for s in both(h)]) == [1, None]


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_cookie_session_over_the_limit_fails_the_request(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.__setitem__("a", 1))
    before = browser.cookie()
    big = secrets.token_urlsafe(4000)  # random: zlib cannot shrink it
    error = browser.fail(lambda h: h.session.__setitem__("big", big))
    assert isinstance(error, SessionTooLarge)
    assert (error.limit, error.cookie_name) == (4093, "session")
    assert error.size > 4093
    assert "server-side backend" in str(error)
    assert browser.cookie() == before  # the old session stays, not a silent loss
    assert browser(lambda h: dict(h.session)) == {"a": 1}


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_cookie_session_under_the_limit_is_kept(backend: str) -> None:
    browser = Browser(default_backend=backend)
    value = secrets.token_urlsafe(2200)
    browser(lambda h: h.session.__setitem__("v", value))
    assert len(browser.cookie() or "") < 4093
    assert browser(lambda h: h.session["v"]) == value


def test_large_session_on_a_server_side_backend_is_fine() -> None:
    browser = Browser(default_backend="memory")
    big = secrets.token_urlsafe(20000)
    browser(lambda h: h.session.__setitem__("big", big))
    assert len(browser.cookie() or "") < 200
    assert browser(lambda h: h.session["big"]) == big


def test_a_store_for_a_blank_request_uses_the_active_app() -> None:
    app = webapp2.WSGIApplication(config={"tipsessions": {"secret_key": SECRET}})
    request = webapp2.Request.blank("/")
    app.set_globals(app=app, request=request)
    try:
        store = tipsessions.SessionStore(request)
        assert store.get_session().new is True
    finally:
        app.clear_globals()
