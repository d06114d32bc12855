"""Plain cookies hold what a cookie may hold, or the call says so by name.

``set_cookie`` takes RFC 6265's cookie-octets (printable ASCII but space,
``"``, ``,``, ``;`` and ``\\``). Anything else would break or split the
``Set-Cookie`` header, or make WebOb warn that a later version will raise;
here it raises ``ValueError`` naming the cookie, at the call, so the
traceback points at the code that passed it.
"""

from __future__ import annotations

import pytest

from tests.apps import Browser

#: Every character a cookie value may hold.
COOKIE_OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')


def test_every_cookie_octet_goes_out_as_given() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_cookie("plain", COOKIE_OCTETS))
    (header,) = browser.set_cookies()
    assert header.startswith(f"plain={COOKIE_OCTETS}; ")


def test_an_empty_value_is_a_value() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_cookie("plain", ""))
    (header,) = browser.set_cookies()
    assert header.startswith("plain=; ")
    assert "Max-Age=0" not in header


@pytest.mark.parametrize(
    "value",
    [
        "a value with spaces",
        "a,b",
        "a;b",
        'say "hi"',
        '"quoted"',
        "back\\slash",
        "naïve",
        "tab\there",
        "new\nline",
        "del\x7f",
        "nul\x00",
    ],
)
def test_a_value_a_cookie_cannot_hold_raises_naming_the_cookie(value: str) -> None:
    browser = Browser()

    error = browser.fail(lambda h: h.session_store.set_cookie("prefs", value))

    assert isinstance(error, ValueError)
    assert str(error).startswith("cookie 'prefs': ")
    assert "urllib.parse.quote" in str(error)
    assert browser.set_cookies() == []


def test_a_refused_value_leaves_the_earlier_one_in_place() -> None:
    browser = Browser()

    def script(h: object) -> str:
        store = h.session_store  # type: ignore[attr-defined]
        store.set_cookie("prefs", "dark")
        try:
            store.set_cookie("prefs", "light mode")
        except ValueError:
            return "refused"
        return "accepted"

    assert browser(script) == "refused"
    (header,) = browser.set_cookies()
    assert header.startswith("prefs=dark; ")
