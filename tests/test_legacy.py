"""``legacy_cookies``: sessions signed by webapp2_extras.sessions (or tipfy) are adopted once.

The old cookies are made by the real ``webapp2_extras.sessions`` that ships
in webapp2 3.0.0b1, through a real webapp2 application, with the same
secret; tipfy wrote the identical format. An adopted session is re-issued
in tipsessions' format on the same response, on every backend. The reader
itself is total: whatever bytes arrive, it gives the data or None.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
import webapp2
import webtest
from webapp2_extras import sessions as extras_sessions
from webapp2_extras.securecookie import SecureCookieSerializer

from tests.apps import SECRET, Browser
from tests.conftest import SERVER_BACKENDS
from tipsessions import ConfigError
from tipsessions.config import load_settings
from tipsessions.legacy import read

OTHER_SECRET = "some-other-secret-0123456789abcdef"


class OldHandler(webapp2.RequestHandler):
    """A handler of the application before the move, as webapp2_extras' docs write it."""

    def get(self) -> None:
        store = extras_sessions.get_store(request=self.request)
        session = store.get_session(self.request.GET.get("name") or None)
        session.update(self.app.registry["data"])
        for message, level in self.app.registry["flashes"]:
            session.add_flash(message, level)
        store.save_sessions(self.response)


def old_cookie(
    data: dict[str, Any],
    flashes: list[tuple[str, str | None]] | None = None,
    secret: str = SECRET,
    name: str = "session",
    browser: Browser | None = None,
) -> str:
    """The session cookie webapp2_extras.sessions sets for ``data`` and ``flashes``.

    With ``browser``, that browser visits the old application, so the cookie
    sits in its jar exactly where the new application's will go.
    """
    app = webapp2.WSGIApplication(
        [("/", OldHandler)], config={"webapp2_extras.sessions": {"secret_key": secret}}
    )
    app.registry.update(data=data, flashes=flashes or [])
    jar = browser.web.cookiejar if browser is not None else None
    client = webtest.TestApp(app, cookiejar=jar)
    client.get("/", {"name": name})
    return str(client.cookies[name])


def session_cookies(browser: Browser) -> list[str]:
    return [cookie.value for cookie in browser.web.cookiejar if cookie.name == "session"]


def sign_old(payload: bytes, issued: int | None = None, name: str = "session") -> str:
    """Any payload, signed exactly as webapp2_extras signs (its own serializer's HMAC)."""
    serializer = SecureCookieSerializer(SECRET)
    data = base64.b64encode(payload)
    stamp = str(int(time.time()) if issued is None else issued).encode()
    signature = serializer._get_signature(name.encode(), data, stamp)
    return b"|".join([data, stamp, signature]).decode()


def is_reissued(header: str) -> bool:
    value = header.split(";", 1)[0].split("=", 1)[1]
    return header.startswith("session=") and "|" not in value and "Max-Age=0" not in header


@pytest.fixture
def migrating(settings: dict[str, Any]) -> Browser:
    return Browser(**settings, legacy_cookies="webapp2_extras")


def test_an_old_session_is_adopted_and_reissued_on_the_same_response(
    migrating: Browser, backend_name: str
) -> None:
    old = old_cookie({"user": "ada", "cart": [1, "</b>"]}, browser=migrating)

    seen = migrating(lambda h: (h.session.new, dict(h.session)))

    assert seen == (False, {"user": "ada", "cart": [1, "</b>"]})
    (header,) = migrating.set_cookies()
    assert is_reissued(header)
    assert session_cookies(migrating) == [migrating.cookie()] != [old]  # replaced
    # From now on the browser holds a tipsessions cookie, read the usual way.
    assert migrating(lambda h: dict(h.session)) == {"user": "ada", "cart": [1, "</b>"]}
    assert migrating.set_cookies() == []
    if backend_name in SERVER_BACKENDS:
        signed = base64.urlsafe_b64decode((migrating.cookie() or "") + "==")
        assert b"ada" not in signed, "only an id travels"


def test_pending_flashes_come_along(migrating: Browser) -> None:
    old_cookie({"n": 1}, [("Saved", "success"), ("Hi", None)], browser=migrating)

    assert migrating(lambda h: h.session.get_flashes()) == [("Saved", "success"), ("Hi", None)]
    assert migrating(lambda h: (dict(h.session), h.session.get_flashes())) == ({"n": 1}, [])


def test_an_adopted_session_that_is_invalidated_expires_the_old_cookie(migrating: Browser) -> None:
    old_cookie({"user": "ada"}, browser=migrating)

    migrating(lambda h: h.session.invalidate())

    (header,) = migrating.set_cookies()
    assert "Max-Age=0" in header
    assert session_cookies(migrating) == []


def test_adoption_is_logged_once_and_a_forgery_without_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser(legacy_cookies="webapp2_extras")
    old_cookie({"user": "ada"}, browser=browser)
    with caplog.at_level("INFO", logger="tipsessions.security"):
        browser(lambda h: h.session.get("user"))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "adopted a legacy 'session' cookie into the securecookie backend")
    ]

    caplog.clear()
    forged = old_cookie({"user": "root"}, secret=OTHER_SECRET)
    browser.set_cookie("session", forged)
    with caplog.at_level("INFO", logger="tipsessions.security"):
        browser(lambda h: h.session.get("user"))
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "not a live legacy session" in record.getMessage()
    assert forged.split("|")[0] not in record.getMessage()


def test_tipfy_names_the_same_format() -> None:
    browser = Browser(legacy_cookies="tipfy")
    browser.set_cookie("session", old_cookie({"user": "ada"}))
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}


def test_without_the_setting_an_old_cookie_is_a_new_session() -> None:
    browser = Browser()
    browser.set_cookie("session", old_cookie({"user": "ada"}))
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    assert browser.set_cookies() == []


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: old_cookie({"user": "ada"}, secret=OTHER_SECRET), "signed with another secret"),
        (lambda: old_cookie({"user": "ada"}, name="admin"), "signed for another cookie name"),
        (lambda: old_cookie({"_sid": "A" * 22}), "a server-side session's id: a pickle"),
        (lambda: sign_old(b'["not", "a", "dict"]'), "not a session"),
        (lambda: sign_old(b'{"user": "ada"}', issued=int(time.time()) + 3600), "from the future"),
    ],
)
def test_what_is_not_an_old_session_of_this_app_is_not_adopted(make: Any, why: str) -> None:
    browser = Browser(legacy_cookies="webapp2_extras")
    browser.set_cookie("session", make())
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {}), why
    assert browser.set_cookies() == []


def test_an_old_secret_later_in_the_list_still_verifies() -> None:
    browser = Browser(secret_key=[OTHER_SECRET, SECRET], legacy_cookies="webapp2_extras")
    browser.set_cookie("session", old_cookie({"user": "ada"}))
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_900_000_000, tick=True) as traveller:
        yield traveller


def test_lifetimes_apply_to_old_cookies(clock: time_machine.Traveller) -> None:
    idle = Browser(legacy_cookies="webapp2_extras", session_max_age=3600)
    idle.set_cookie("session", old_cookie({"user": "ada"}))
    clock.shift(3601)
    assert idle(lambda h: dict(h.session)) == {}

    absolute = Browser(legacy_cookies="webapp2_extras", session_absolute_max_age=600)
    absolute.set_cookie("session", old_cookie({"user": "ada"}))
    clock.shift(601)
    assert absolute(lambda h: dict(h.session)) == {}


def test_a_tipsessions_cookie_wins_over_an_old_one_of_the_same_name() -> None:
    browser = Browser(legacy_cookies="webapp2_extras")
    browser(lambda h: h.session.__setitem__("user", "current"))
    current = browser.cookie()
    browser.forget_cookies()
    old = old_cookie({"user": "old"})

    seen = browser(
        lambda h: dict(h.session), headers={"Cookie": f"session={old}; session={current}"}
    )

    assert seen == {"user": "current"}


def test_the_setting_is_validated() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"tipsessions": {"secret_key": SECRET, "legacy_cookies": "django"}})
    assert caught.value.key == "tipsessions.legacy_cookies"
    assert "'webapp2_extras', 'tipfy'" in str(caught.value)


def read_ok(value: str | bytes) -> Any:
    """What ``read`` gives, checked to be None or ``(dict, float)``."""
    found = read("session", value, [SECRET])
    assert found is None or (isinstance(found[0], dict) and isinstance(found[1], float))
    return found


def test_the_reader_reads_what_webapp2_extras_wrote() -> None:
    value = old_cookie({"user": "ada"})
    found = read_ok(value)
    assert found is not None and found[0] == {"user": "ada"}
    assert read_ok(value.encode()) == found
    assert read_ok(f'"{value}"') == found  # as old WebOb quoted it


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe not utf-8",
        b"{",
        b'{"a": NaN}',
        b'{"a": 1e999}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": "\\ud800"}',
        b' {"a": 1} ',
        b"",
        b"null",
    ],
)
def test_the_reader_refuses_signed_junk(payload: bytes) -> None:
    assert read_ok(sign_old(payload)) is None


def test_the_reader_survives_any_bytes() -> None:
    rng = random.Random(20240611)
    genuine = old_cookie({"user": "ada", "cart": [1, 2, 3]})
    alphabet = 'A=+/|0123456789abcdef"\\; \x00é'
    values: list[str | bytes] = [
        "",
        "|",
        "||",
        "a|b|c",
        "|" * 5000,
        genuine + "|x",
        genuine.replace("|", "||", 1),
        "A" * 10_000 + genuine,
        f"{genuine.split('|')[0]}|{'9' * 5000}|{genuine.split('|')[2]}",
    ]
    values += [genuine[:cut] for cut in range(len(genuine))]
    values += [genuine[:i] + genuine[i + 1 :] for i in range(len(genuine))]
    for _ in range(1500):
        position = rng.randrange(len(genuine))
        values.append(genuine[:position] + rng.choice(alphabet) + genuine[position + 1 :])
        values.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        values.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 120))))

    adopted = {value for value in values if read_ok(value) is not None}

    # Only the genuine value itself (a substitution may put back the same character).
    assert adopted <= {genuine}
