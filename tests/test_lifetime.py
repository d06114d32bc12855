"""Lifetimes chosen at run time: ``session.set_max_age()`` ("remember me").

The choice drives the cookie's Max-Age, the idle window and the server-side
expiry together, and is stored with the session, so it holds on later
requests too. Also here: ``session.modified = True`` forcing a save.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from tests.apps import Browser, CallCounter, backend_of
from tests.conftest import SERVER_BACKENDS

MONTH = 30 * 24 * 3600


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    # tick=True: client libraries time their sockets with the clock.
    with time_machine.travel(1_900_000_000, tick=True) as traveller:
        yield traveller


def session_cookie(browser: Browser) -> str:
    (header,) = [h for h in browser.set_cookies() if h.startswith("session=")]
    return header


def max_age_of(header: str) -> str | None:
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age":
            return value
    return None


def remember(h: Any) -> None:
    h.session["user"] = "ada"
    h.session.set_max_age(MONTH)


def test_remember_me_outlives_the_configured_idle_window(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    browser = Browser(session_max_age=600, **settings)
    browser(remember)
    assert max_age_of(session_cookie(browser)) == str(MONTH)
    clock.shift(2 * 3600)
    assert browser(lambda h: (h.session.new, h.session.get("user"))) == (False, "ada")
    clock.shift(MONTH - 60)  # idle for a month less a minute
    assert browser(lambda h: h.session.get("user")) == "ada"


def test_the_chosen_lifetime_holds_on_later_requests(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    browser = Browser(session_max_age=600, session_refresh_interval=0, **settings)
    browser(remember)
    clock.shift(3600)
    browser(lambda h: h.session.__setitem__("visits", 1))
    assert max_age_of(session_cookie(browser)) == str(MONTH)
    clock.shift(MONTH + 1)
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})


def test_a_short_chosen_lifetime_ends_the_session_exactly(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    browser = Browser(**settings)
    browser(lambda h: (h.session.__setitem__("a", 1), h.session.set_max_age(100)))
    clock.shift(99.9)
    assert browser(lambda h: h.session.get("a"), headers={}) == 1
    clock.shift(100.1)
    assert browser(lambda h: (h.session.new, h.session.get("a"))) == (True, None)


def test_none_makes_a_browser_session_cookie(settings: dict[str, Any]) -> None:
    browser = Browser(cookie_args={"max_age": 3600}, session_refresh_interval=0, **settings)
    browser(lambda h: h.session.__setitem__("a", 1))
    assert max_age_of(session_cookie(browser)) == "3600"
    browser(lambda h: h.session.set_max_age(None))
    assert max_age_of(session_cookie(browser)) is None
    browser(lambda h: h.session.__setitem__("b", 2))
    assert max_age_of(session_cookie(browser)) is None
    assert browser(lambda h: dict(h.session)) == {"a": 1, "b": 2}


def test_choosing_a_lifetime_alone_is_saved(settings: dict[str, Any]) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("a", 1))
    assert browser(lambda h: (h.session.set_max_age(MONTH), h.session.modified)[1]) is True
    assert max_age_of(session_cookie(browser)) == str(MONTH)


def test_an_invalidated_session_forgets_its_lifetime(settings: dict[str, Any]) -> None:
    browser = Browser(**settings)
    browser(remember)
    browser(lambda h: h.session.invalidate())
    browser(lambda h: h.session.__setitem__("a", 1))
    assert max_age_of(session_cookie(browser)) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "60", True])
def test_set_max_age_takes_whole_seconds_or_none(bad: Any) -> None:
    browser = Browser()

    def choose(h: Any) -> None:
        with pytest.raises(ValueError, match="set_max_age"):
            h.session.set_max_age(bad)

    browser(choose)


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_the_server_side_expiry_follows_the_chosen_lifetime(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from tests.conftest import backend_settings

    browser = Browser(server_ttl=60, **backend_settings(backend, request, tmp_path))
    store = backend_of(browser)
    ttls: list[int] = []
    for call in ("put", "update", "touch"):
        original = getattr(store, call)

        def spy(key: str, value: Any, ttl: int, *rest: Any, _original: Any = original) -> Any:
            ttls.append(ttl)
            return _original(key, value, ttl, *rest)

        setattr(store, call, spy)
    browser(lambda h: h.session.__setitem__("a", 1))
    browser(lambda h: h.session.set_max_age(MONTH))
    assert ttls == [60, MONTH]


def test_modified_true_forces_a_save(settings: dict[str, Any]) -> None:
    browser = Browser(session_refresh_interval=3600, **settings)
    browser(lambda h: h.session.__setitem__("a", 1))
    counter = CallCounter(backend_of(browser))
    browser(lambda h: h.session.get("a"))
    assert browser.set_cookies() == [] and counter.writes() == 0

    def force(h: Any) -> bool:
        h.session.modified = True
        return bool(h.session.modified)

    assert browser(force) is True
    if counter:  # server-side: one write of the unchanged data
        assert counter.writes() == 1
    else:
        assert len(browser.set_cookies()) == 1
    assert browser(lambda h: dict(h.session)) == {"a": 1}
