"""Habits users bring from Flask, Django and tipfy meet an answer, never silence.

* Assigning an attribute a session does not have raises AttributeError with
  the call that does it here (``permanent`` points to ``set_max_age``).
* ``session.modified = True`` forces a save, on every backend.
* A handler that uses sessions without the middleware that saves them gets
  a ConfigError saying what to add, on first use, instead of losing every
  change.
"""

from __future__ import annotations

from typing import Any

import pytest
import webapp2

from tests.apps import Browser, CallCounter, ScriptHandler, backend_of
from tipsessions import ConfigError, Session, SessionMiddleware, SessionMixin
from tipsessions.templates import context


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("permanent", "call session.set_max_age(seconds)"),
        ("set_expiry", "call session.set_max_age(seconds)"),
        ("cycle_key", "call session.regenerate_id()"),
        ("flush", "call session.invalidate()"),
        ("user", "session data goes by key: session['user'] = value"),
    ],
)
def test_assigning_an_unknown_attribute_raises_with_a_hint(name: str, hint: str) -> None:
    session = Session()
    with pytest.raises(AttributeError, match=f"^Session has no attribute '{name}'; ") as caught:
        setattr(session, name, True)
    assert hint in str(caught.value)
    assert name not in vars(session)
    assert not session.modified


def test_reading_an_unknown_attribute_hints_at_the_key() -> None:
    session = Session()
    session["email"] = "ada@example.com"
    with pytest.raises(AttributeError, match=r"session data goes by key: session.get\('email'\)"):
        _ = session.email  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="set_max_age"):
        session.set_expiry(300)  # type: ignore[attr-defined]
    assert not hasattr(session, "permanent")
    assert getattr(session, "_private", "default") == "default"


def test_the_session_own_attributes_stay_assignable() -> None:
    session = Session()
    session.new = False
    session.modified = True
    assert (session.new, session.modified) == (False, True)


def test_a_permanent_session_is_made_with_set_max_age_instead(settings: dict[str, Any]) -> None:
    browser = Browser(**settings)

    def flask_habit(h: Any) -> str:
        h.session["user"] = "ada"
        try:
            h.session.permanent = True
        except AttributeError as error:
            h.session.set_max_age(3600)
            return str(error)
        return "accepted"

    assert "set_max_age" in browser(flask_habit)
    (header,) = browser.set_cookies()
    assert "Max-Age=3600" in header


def test_modified_true_forces_a_save(settings: dict[str, Any], backend_name: str) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    calls = CallCounter(backend_of(browser))

    # Read only: nothing to save.
    assert browser(lambda h: h.session["user"]) == "ada"
    assert browser.set_cookies() == []
    assert calls.writes() == 0

    # The handler insists: the session is written back as it is.
    browser(lambda h: (h.session["user"], setattr(h.session, "modified", True)))
    if backend_name in ("securecookie", "encryptedcookie"):
        (header,) = browser.set_cookies()
        assert header.startswith("session=")
    else:
        assert calls["update"] == 1
    assert browser(lambda h: (dict(h.session), h.session.modified)) == ({"user": "ada"}, False)


def test_modified_true_on_an_empty_new_session_stores_nothing(settings: dict[str, Any]) -> None:
    browser = Browser(**settings)
    browser(lambda h: setattr(h.session, "modified", True))
    assert browser.set_cookies() == []
    assert browser.cookie() is None


class WithoutMiddleware(SessionMixin, webapp2.RequestHandler):
    get = ScriptHandler.get


class MiddlewareClassListed(SessionMixin, webapp2.RequestHandler):
    middleware = [SessionMiddleware]  # noqa: RUF012 -- tipfy's spelling, refused
    get = ScriptHandler.get


def test_sessions_without_the_middleware_raise_config_error_on_first_use() -> None:
    browser = Browser(WithoutMiddleware)

    error = browser.fail(lambda h: h.session.__setitem__("user", "ada"))

    assert isinstance(error, ConfigError)
    assert error.key == "WithoutMiddleware.middleware"
    assert "add middleware = [SessionMiddleware()]" in str(error)
    assert "tipsessions.BaseHandler" in str(error)
    for use in (
        lambda h: h.session_store.set_cookie("a", "b"),
        lambda h: context(h)["session"].get("user"),
    ):
        assert isinstance(browser.fail(use), ConfigError)


def test_a_handler_without_the_middleware_that_uses_no_session_works() -> None:
    browser = Browser(WithoutMiddleware)
    assert browser(lambda h: h.response.write("plain") or "done") == "done"
    assert browser.response is not None and browser.response.text == "plain"


def test_a_middleware_class_instead_of_an_instance_is_refused() -> None:
    browser = Browser(MiddlewareClassListed)

    error = browser.fail(lambda h: None)

    assert isinstance(error, ConfigError)
    assert error.key == "MiddlewareClassListed.middleware"
    assert "list an instance: middleware = [SessionMiddleware()]" in str(error)
