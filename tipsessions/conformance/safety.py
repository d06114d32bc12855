"""What a client cannot do to a session, and what a request costs the backend.

Tampered and forged cookies, ids the server never issued, secret rotation,
what a cookie shows, and the storage calls each request makes. Part of
:class:`~tipsessions.conformance.BackendContract`, whose fixtures these
cases ask for.
"""

from __future__ import annotations

import base64

import pytest

from ..runtime import Runtime
from .browser import (
    SECRET,
    Browser,
    CallCounter,
    backend_of,
    expired_cookie,
    plant_session_id,
    rotate_secrets,
)

HOSTILE_COOKIES = [
    "../../../../etc/passwd",
    "' OR '1'='1",
    "x" * 5000,
    "\u2603".encode().decode("latin-1"),  # UTF-8 bytes, as a WSGI server passes them
    "",
    "a.b.c",
    "eyJkIjp7fX0.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
]


class SafetyCases:
    """Hostile cookies, forged ids, rotated secrets, and round trips to the backend."""

    def test_server_side_cookie_holds_no_data(
        self, browser: Browser, data_readable_in_cookie: bool
    ) -> None:
        marker = "very-private-marker-7781"
        browser(lambda h: h.session.__setitem__("secret", marker))
        value = browser.cookie() or ""
        decoded = base64.urlsafe_b64decode(value.split(".")[0] + "==").decode("latin-1")
        if data_readable_in_cookie:
            assert marker in decoded  # signed, not encrypted: the documented difference
        else:
            assert marker not in value and marker not in decoded

    @pytest.mark.parametrize("hostile", HOSTILE_COOKIES)
    def test_hostile_cookie_is_a_new_session(self, browser: Browser, hostile: str) -> None:
        browser.set_cookie("session", hostile)
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
        browser(lambda h: h.session.__setitem__("a", 1))
        assert browser.cookie() != hostile
        assert browser(lambda h: h.session["a"]) == 1

    def test_signed_but_unknown_id_is_never_adopted(
        self, browser: Browser, server_side: bool
    ) -> None:
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

    def test_reads_never_create_records(self, browser: Browser, server_side: bool) -> None:
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

    def test_sessions_survive_a_secret_rotation(self, browser: Browser, server_side: bool) -> None:
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

    def test_round_trips(self, browser: Browser, server_side: bool) -> None:
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

    def test_read_only_requests_write_nothing(self, browser: Browser) -> None:
        browser(lambda h: h.session.update(a=[1], b={"c": 2}))
        calls = CallCounter(backend_of(browser))
        for _ in range(3):
            assert browser(lambda h: (h.session["a"], h.session["b"]["c"])) == ([1], 2)
            assert browser.set_cookies() == []
        assert calls.writes() == 0
