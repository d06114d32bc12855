"""What a session keeps between requests, and how it ends.

Round trips of data, flashes and transient values; regeneration,
invalidation and expiry; a second backend beside the one under test. Part
of :class:`~tipsessions.conformance.BackendContract`, whose fixtures these
cases ask for.
"""

from __future__ import annotations

from typing import Any

import time_machine

from .browser import Browser, CallCounter, backend_of, expired_cookie


class LifecycleCases:
    """Data in, data out; regeneration, invalidation and expiry."""

    def test_round_trip(self, browser: Browser) -> None:
        browser(lambda h: h.session.update(name="Ada", visits=1, ratio=0.1 + 0.2))
        assert browser(lambda h: dict(h.session)) == {
            "name": "Ada",
            "visits": 1,
            "ratio": 0.1 + 0.2,
        }
        assert browser(lambda h: h.session.new) is False

    def test_fresh_client_gets_a_fresh_session(
        self, browser: Browser, settings: dict[str, Any]
    ) -> None:
        browser(lambda h: h.session.__setitem__("user", "ada"))
        stranger = Browser(**settings)
        stranger.app = browser.app
        stranger.web.app = browser.app
        assert stranger(lambda h: (h.session.new, dict(h.session))) == (True, {})

    def test_unicode_keys_and_values(self, browser: Browser) -> None:
        data = {"clé": "naïve ☃", "名前": ["東京", {"ключ": "значение"}], "emoji": "🍪"}
        browser(lambda h: h.session.update(data))
        assert browser(lambda h: dict(h.session)) == data

    def test_nested_change_is_saved(self, browser: Browser) -> None:
        browser(lambda h: h.session.__setitem__("cart", {"items": [1]}))
        browser(lambda h: h.session["cart"]["items"].append(2))
        assert browser(lambda h: h.session["cart"]) == {"items": [1, 2]}

    def test_flashes_are_shown_once_oldest_first(self, browser: Browser) -> None:
        browser(lambda h: h.session.add_flash("saved", "success"))
        browser(lambda h: h.session.add_flash({"n": 2}))
        assert browser(lambda h: h.session.get_flashes()) == [
            ("saved", "success"),
            ({"n": 2}, None),
        ]
        assert browser(lambda h: h.session.get_flashes()) == []

    def test_reading_no_flashes_changes_nothing(self, browser: Browser) -> None:
        browser(lambda h: h.session.__setitem__("a", 1))
        calls = CallCounter(backend_of(browser))
        assert browser(lambda h: (h.session.get_flashes(), h.session.modified)) == ([], False)
        assert browser.set_cookies() == []
        assert calls.writes() == 0

    def test_flashes_under_their_own_key(self, browser: Browser) -> None:
        browser(lambda h: (h.session.add_flash("a", key="_errors"), h.session.add_flash("b")))
        assert browser(lambda h: h.session.get_flashes("_errors")) == [("a", None)]
        assert browser(lambda h: h.session.get_flashes()) == [("b", None)]

    def test_transient_values_live_for_one_request(self, browser: Browser) -> None:
        browser(lambda h: h.session.__setitem__("user", "stored"))

        def shadow(h: Any) -> Any:
            h.session.set_t("user", "transient")
            h.session.set_t("token", "t0k")
            seen = (h.session["user"], h.session.get("user"), h.session.get_t("user"))
            return seen, h.session.get_t("missing", "default"), h.session.modified

        assert browser(shadow) == (("transient", "transient", "transient"), "default", False)
        assert browser.set_cookies() == []
        assert browser(lambda h: (h.session["user"], h.session.get_t("token"))) == ("stored", None)

    def test_emptied_session_is_deleted_not_stored(
        self, browser: Browser, server_side: bool
    ) -> None:
        browser(lambda h: h.session.__setitem__("a", 1))
        old_cookie = browser.cookie() or ""
        browser(lambda h: h.session.pop("a"))
        (header,) = browser.set_cookies()
        assert expired_cookie(header)
        if server_side:
            browser.set_cookie("session", old_cookie)
            assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})

    def test_regenerate_keeps_data_under_a_new_id(
        self, browser: Browser, server_side: bool
    ) -> None:
        browser(lambda h: h.session.__setitem__("cart", [1]))
        old_cookie = browser.cookie() or ""
        browser(lambda h: (h.session.regenerate_id(), h.session.__setitem__("user", "ada")))
        (header,) = browser.set_cookies()
        assert not expired_cookie(header)
        assert browser(lambda h: dict(h.session)) == {"cart": [1], "user": "ada"}
        if server_side:
            assert browser.cookie() != old_cookie
            browser.set_cookie("session", old_cookie)
            assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})

    def test_invalidate_reaches_nothing_afterwards(
        self, browser: Browser, server_side: bool
    ) -> None:
        browser(lambda h: h.session.__setitem__("user", "ada"))
        old_cookie = browser.cookie() or ""
        assert browser(lambda h: (h.session.invalidate(), dict(h.session))[1]) == {}
        (header,) = browser.set_cookies()
        assert expired_cookie(header)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
        if server_side:
            # The cookie a thief copied before logout is worthless after it.
            browser.set_cookie("session", old_cookie)
            assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})

    def test_data_stored_after_invalidate_starts_a_new_session(self, browser: Browser) -> None:
        browser(lambda h: h.session.__setitem__("user", "ada"))
        browser(lambda h: (h.session.invalidate(), h.session.add_flash("Logged out")))
        assert browser(lambda h: (dict(h.session), h.session.get_flashes())) == (
            {},
            [("Logged out", None)],
        )

    def test_idle_expiry(self, settings: dict[str, Any], clock: time_machine.Traveller) -> None:
        browser = Browser(session_max_age=100, **settings)
        browser(lambda h: h.session.__setitem__("a", 1))
        clock.shift(60)
        assert browser(lambda h: h.session["a"]) == 1  # activity keeps it alive...
        clock.shift(60)
        assert browser(lambda h: h.session.get("a")) == 1  # ...past the first deadline
        clock.shift(101)
        assert browser(lambda h: (h.session.new, h.session.get("a"))) == (True, None)

    def test_absolute_expiry_is_not_extended_by_activity(
        self, settings: dict[str, Any], clock: time_machine.Traveller
    ) -> None:
        browser = Browser(session_absolute_max_age=300, session_max_age=200, **settings)
        browser(lambda h: h.session.__setitem__("a", 1))
        for _ in range(2):
            clock.shift(120)
            browser(lambda h: h.session.__setitem__("a", h.session["a"] + 1))
        assert browser(lambda h: h.session["a"]) == 3
        clock.shift(61)
        assert browser(lambda h: (h.session.new, h.session.get("a"))) == (True, None)

    def test_sessions_on_two_backends_side_by_side(self, browser: Browser) -> None:
        backend_name = backend_of(browser).name
        other = "memory" if backend_name != "memory" else "securecookie"
        browser(lambda h: h.session_store.get_session("side", backend=other).__setitem__("x", 1))
        browser(lambda h: h.session.__setitem__("y", 2))
        side = browser(lambda h: dict(h.session_store.get_session("side", backend=other)))
        assert (browser(lambda h: dict(h.session)), side) == (
            {"y": 2},
            {"x": 1},
        )
