"""The contract every backend keeps, run against each of them for real.

Cookie backends and server-side backends differ in what they *can* do
(a cookie cannot be revoked); where a case depends on that, it says so.
A backend written by a user passes this suite by adding its name to
``SERVER_BACKENDS`` or ``COOKIE_BACKENDS`` in conftest.py (and its settings
to ``backend_settings``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from tests.apps import (
    SECRET,
    Browser,
    CallCounter,
    backend_of,
    plant_session_id,
    rotate_secrets,
)
from tests.conftest import SERVER_BACKENDS
from tipsessions.runtime import Runtime


@pytest.fixture
def browser(settings: dict[str, Any]) -> Browser:
    return Browser(**settings)


@pytest.fixture
def server_side(backend_name: str) -> bool:
    return backend_name in SERVER_BACKENDS


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    # tick=True: client libraries time their sockets with the clock.
    with time_machine.travel(1_900_000_000, tick=True) as traveller:
        yield traveller


def expired_cookie(header: str) -> bool:
    return "Max-Age=0" in header


def test_round_trip(browser: Browser) -> None:
    browser(lambda h: h.session.update(name="Ada", visits=1, ratio=0.1 + 0.2))
    assert browser(lambda h: dict(h.session)) == {"name": "Ada", "visits": 1, "ratio": 0.1 + 0.2}
    assert browser(lambda h: h.session.new) is False


def test_fresh_client_gets_a_fresh_session(browser: Browser, settings: dict[str, Any]) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))
    stranger = Browser(**settings)
    stranger.app = browser.app
    stranger.web.app = browser.app
    assert stranger(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_unicode_keys_and_values(browser: Browser) -> None:
    data = {"clé": "naïve ☃", "名前": ["東京", {"ключ": "значение"}], "emoji": "🍪"}
    browser(lambda h: h.session.update(data))
    assert browser(lambda h: dict(h.session)) == data


def test_nested_change_is_saved(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("cart", {"items": [1]}))
    browser(lambda h: h.session["cart"]["items"].append(2))
    assert browser(lambda h: h.session["cart"]) == {"items": [1, 2]}


def test_flashes_are_shown_once_oldest_first(browser: Browser) -> None:
    browser(lambda h: h.session.add_flash("saved", "success"))
    browser(lambda h: h.session.add_flash({"n": 2}))
    assert browser(lambda h: h.session.get_flashes()) == [("saved", "success"), ({"n": 2}, None)]
    assert browser(lambda h: h.session.get_flashes()) == []


def test_reading_no_flashes_changes_nothing(browser: Browser, backend_name: str) -> None:
    browser(lambda h: h.session.__setitem__("a", 1))
    calls = CallCounter(backend_of(browser))
    assert browser(lambda h: (h.session.get_flashes(), h.session.modified)) == ([], False)
    assert browser.set_cookies() == []
    assert calls.writes() == 0


def test_flashes_under_their_own_key(browser: Browser) -> None:
    browser(lambda h: (h.session.add_flash("a", key="_errors"), h.session.add_flash("b")))
    assert browser(lambda h: h.session.get_flashes("_errors")) == [("a", None)]
    assert browser(lambda h: h.session.get_flashes()) == [("b", None)]


def test_transient_values_live_for_one_request(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("user", "stored"))

    def shadow(h: Any) -> Any:
        h.session.set_t("user", "transient")
        h.session.set_t("token", "t0k")
        seen = (h.session["user"], h.session.get("user"), h.session.get_t("user"))
        return seen, h.session.get_t("missing", "default"), h.session.modified

    assert browser(shadow) == (("transient", "transient", "transient"), "default", False)
    assert browser.set_cookies() == []
    assert browser(lambda h: (h.session["user"], h.session.get_t("token"))) == ("stored", None)


def test_emptied_session_is_deleted_not_stored(browser: Browser, server_side: bool) -> None:
    browser(lambda h: h.session.__setitem__("a", 1))
    old_cookie = browser.cookie()
    browser(lambda h: h.session.pop("a"))
    (header,) = browser.set_cookies()
    assert expired_cookie(header)
    if server_side:
        browser.set_cookie("session", old_cookie)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_regenerate_keeps_data_under_a_new_id(browser: Browser, server_side: bool) -> None:
    browser(lambda h: h.session.__setitem__("cart", [1]))
    old_cookie = browser.cookie()
    browser(lambda h: (h.session.regenerate_id(), h.session.__setitem__("user", "ada")))
    (header,) = browser.set_cookies()
    assert not expired_cookie(header)
    assert browser(lambda h: dict(h.session)) == {"cart": [1], "user": "ada"}
    if server_side:
        assert browser.cookie() != old_cookie
        browser.set_cookie("session", old_cookie)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_invalidate_reaches_nothing_afterwards(browser: Browser, server_side: bool) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))
    old_cookie = browser.cookie()
    assert browser(lambda h: (h.session.invalidate(), dict(h.session))[1]) == {}
    (header,) = browser.set_cookies()
    assert expired_cookie(header)
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    if server_side:
        # The cookie a thief copied before logout is worthless after it.
        browser.set_cookie("session", old_cookie)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_data_stored_after_invalidate_starts_a_new_session(browser: Browser) -> None:
    browser(lambda h: h.session.__setitem__("user", "ada"))
    browser(lambda h: (h.session.invalidate(), h.session.add_flash("Logged out")))
    assert browser(lambda h: (dict(h.session), h.session.get_flashes())) == (
        {},
        [("Logged out", None)],
    )


def test_idle_expiry(settings: dict[str, Any], clock: time_machine.Traveller) -> None:
    browser = Browser(session_max_age=100, **settings)
    browser(lambda h: h.session.__setitem__("a", 1))
    clock.shift(60)
    assert browser(lambda h: h.session["a"]) == 1  # activity keeps it alive...
    clock.shift(60)
    assert browser(lambda h: h.session.get("a")) == 1  # ...past the first deadline
    clock.shift(101)
    assert browser(lambda h: (h.session.new, h.session.get("a"))) == (True, None)


def test_absolute_expiry_is_not_extended_by_activity(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    browser = Browser(session_absolute_max_age=300, session_max_age=200, **settings)
    browser(lambda h: h.session.__setitem__("a", 1))
    for _ in range(2):
        clock.shift(120)
        browser(lambda h: h.session.__setitem__("a", h.session["a"] + 1))
    assert browser(lambda h: h.session["a"]) == 3
    clock.shift(61)
    assert browser(lambda h: (h.session.new, h.session.get("a"))) == (True, None)


def test_server_side_cookie_holds_no_data(browser: Browser, backend_name: str) -> None:
    marker = "very-private-marker-7781"
    browser(lambda h: h.session.__setitem__("secret", marker))
    value = browser.cookie() or ""
    decoded = base64.urlsafe_b64decode(value.split(".")[0] + "==").decode("latin-1")
    if backend_name == "securecookie":
        assert marker in decoded  # signed, not encrypted: the documented difference
    else:
        assert marker not in value and marker not in decoded


HOSTILE_COOKIES = [
    "../../../../etc/passwd",
    "' OR '1'='1",
    "x" * 5000,
    "\u2603".encode().decode("latin-1"),  # UTF-8 bytes, as a WSGI server passes them
    "",
    "a.b.c",
    "eyJkIjp7fX0.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
]


@pytest.mark.parametrize("hostile", HOSTILE_COOKIES)
def test_hostile_cookie_is_a_new_session(browser: Browser, hostile: str) -> None:
    browser.set_cookie("session", hostile)
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    browser(lambda h: h.session.__setitem__("a", 1))
    assert browser.cookie() != hostile
    assert browser(lambda h: h.session["a"]) == 1


def test_signed_but_unknown_id_is_never_adopted(browser: Browser, server_side: bool) -> None:
    """A genuine signature over an id the server never issued (session fixation)."""
    browser(lambda h: None)
    planted = "A" * 43
    plant_session_id(browser, planted)
    assert browser(lambda h: (h.session.new, h.session.__setitem__("a", 1))) == (True, None)
    if server_side:
        keyring = Runtime.of(browser.app).keyring
        issued, _ = keyring.unsign("session", browser.cookie() or "", None)
        assert issued.decode() != planted
    assert browser(lambda h: h.session["a"]) == 1


def test_reads_never_create_records(browser: Browser, server_side: bool) -> None:
    """A request carrying an unknown id and only reading stores nothing."""
    browser(lambda h: None)
    unknown = "B" * 43
    plant_session_id(browser, unknown)
    calls = CallCounter(backend_of(browser))
    assert browser(lambda h: (h.session.new, h.session.get("a"), h.session.get_flashes())) == (
        True,
        None,
        [],
    )
    assert calls.writes() == 0
    assert browser.set_cookies() == []
    if server_side:
        backend = backend_of(browser)
        assert backend.read(backend.storage_key(unknown)) == (None, None)


def test_sessions_survive_a_secret_rotation(browser: Browser, server_side: bool) -> None:
    new_secret = "the-next-secret-0123456789abcdef"
    browser(lambda h: h.session.__setitem__("user", "ada"))
    rotate_secrets(browser, new_secret, SECRET)
    assert browser(lambda h: h.session["user"]) == "ada"  # the old secret still verifies
    if server_side:
        # Found under the old secret's key: moved under the new one at once.
        (header,) = browser.set_cookies()
        assert not expired_cookie(header)
    browser(lambda h: h.session.__setitem__("seen", 1))  # a write signs with the new secret
    rotate_secrets(browser, new_secret)
    assert browser(lambda h: dict(h.session)) == {"user": "ada", "seen": 1}


def test_round_trips(browser: Browser, server_side: bool) -> None:
    browser(lambda h: None)
    calls = CallCounter(backend_of(browser))
    browser(lambda h: h.response.write("no session"))
    assert sum(calls.values()) == 0
    browser(lambda h: h.session.__setitem__("a", 1))
    assert sum(calls.values()) == (1 if server_side else 0)  # a new session: one write
    calls.clear()
    browser(lambda h: h.session["a"])
    assert calls == ({"read": 1} if server_side else {})  # load: one round trip
    calls.clear()
    browser(lambda h: h.session.__setitem__("a", 2))
    assert calls == ({"read": 1, "update": 1} if server_side else {})  # save: one more


def test_read_only_requests_write_nothing(browser: Browser) -> None:
    browser(lambda h: h.session.update(a=[1], b={"c": 2}))
    calls = CallCounter(backend_of(browser))
    for _ in range(3):
        assert browser(lambda h: (h.session["a"], h.session["b"]["c"])) == ([1], 2)
        assert browser.set_cookies() == []
    assert calls.writes() == 0


def test_sessions_on_two_backends_side_by_side(browser: Browser, backend_name: str) -> None:
    other = "memory" if backend_name != "memory" else "securecookie"
    browser(lambda h: h.session_store.get_session("side", backend=other).__setitem__("x", 1))
    browser(lambda h: h.session.__setitem__("y", 2))
    side = browser(lambda h: dict(h.session_store.get_session("side", backend=other)))
    assert (browser(lambda h: dict(h.session)), side) == (
        {"y": 2},
        {"x": 1},
    )
