"""``tipsessions.testing``: seeding a session before a request, reading what one stored.

Run on every backend (the ``settings`` fixture): for cookie sessions the
client's jar receives the signed data, for server-side ones the data goes to
the real server and the jar receives the id. The application under test is
the scripted one of tests/apps.py; the helpers only ever see its WebTest
client.
"""

from __future__ import annotations

from typing import Any

import pytest
import webtest

from tests.apps import Browser
from tipsessions.testing import session_transaction, stored_session


@pytest.fixture
def browser(settings: dict[str, Any]) -> Browser:
    return Browser(**settings)


def test_a_seeded_session_reaches_the_next_request(browser: Browser) -> None:
    with session_transaction(browser.web) as session:
        assert session.new
        session["user"] = "ada"
        session.add_flash("Welcome back", "info")

    seen = browser(lambda h: (h.session.new, dict(h.session), h.session.get_flashes()))

    assert seen == (False, {"user": "ada"}, [("Welcome back", "info")])


def test_stored_session_reads_what_a_response_stored(browser: Browser) -> None:
    browser(lambda h: h.session.update(cart=[1, 2], user="ada"))

    stored = stored_session(browser.web)

    assert not stored.new
    assert stored == {"cart": [1, 2], "user": "ada"}
    assert stored_session(webtest.TestApp(browser.app)).new  # another client has none


def test_a_transaction_starts_from_what_is_stored(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("visits", 1))

    with session_transaction(browser.web) as session:
        assert session == {"visits": 1}
        session["user"] = "ada"

    assert browser(lambda h: dict(h.session)) == {"visits": 1, "user": "ada"}


def test_reading_changes_nothing(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))
    cookie = browser.cookie()

    stored = stored_session(browser.web)
    stored["user"] = "mallory"

    assert browser.cookie() == cookie
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}


def test_a_block_that_raises_saves_nothing(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))

    with pytest.raises(RuntimeError), session_transaction(browser.web) as session:
        session["user"] = "mallory"
        raise RuntimeError("the test's own failure")

    assert browser(lambda h: dict(h.session)) == {"user": "ada"}


def test_emptying_the_session_in_a_transaction_ends_it(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))

    with session_transaction(browser.web) as session:
        session.clear()

    assert browser.cookie() is None
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_a_named_session_on_its_own_backend(browser: Browser, backend_name: str) -> None:
    with session_transaction(browser.web, "cart", backend=backend_name) as cart:
        cart["items"] = [42]

    seen = browser(lambda h: h.session_store.get_session("cart", backend=backend_name)["items"])
    assert seen == [42]
    assert browser.cookie("session") is None  # the default session was not touched

    browser(lambda h: h.session_store.get_session("cart").__setitem__("items", [42, 7]))
    assert stored_session(browser.web, "cart", backend=backend_name) == {"items": [42, 7]}


def test_lifetime_and_id_changes_carry_over(browser: Browser) -> None:
    with session_transaction(browser.web) as session:
        session["user"] = "ada"
    first = browser.cookie()

    with session_transaction(browser.web) as session:
        session.set_max_age(3600)
        session.regenerate_id()

    assert browser.cookie() != first
    assert browser(lambda h: (dict(h.session), h.session.max_age)) == ({"user": "ada"}, 3600)


def test_the_configured_cookie_path_is_honoured() -> None:
    browser = Browser(cookie_args={"path": "/shop"})

    with session_transaction(browser.web) as session:
        session["user"] = "ada"

    assert browser(lambda h: dict(h.session), path="/shop/cart") == {"user": "ada"}
    assert browser(lambda h: dict(h.session), path="/elsewhere") == {}
    assert stored_session(browser.web) == {"user": "ada"}


def test_the_client_host_is_the_cookie_host() -> None:
    browser = Browser()
    browser.web.extra_environ["HTTP_HOST"] = "shop.example.com"

    with session_transaction(browser.web) as session:
        session["user"] = "ada"

    assert browser(lambda h: dict(h.session)) == {"user": "ada"}
    other_host = webtest.TestApp(browser.app, cookiejar=browser.web.cookiejar)
    assert other_host.get("/").request.headers.get("Cookie") is None


def test_a_wrapped_application_is_passed_as_app() -> None:
    browser = Browser()

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        return browser.app(environ, start_response)

    client = webtest.TestApp(middleware)
    with pytest.raises(TypeError, match="pass the application as app="):
        stored_session(client)

    with session_transaction(client, app=browser.app) as session:
        session["user"] = "ada"

    browser.app.registry["script"] = lambda h: h.response.write(h.session["user"])
    assert client.get("/").text == "ada"
    assert stored_session(client, app=browser.app) == {"user": "ada"}
