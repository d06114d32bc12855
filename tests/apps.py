"""A scripted webapp2 app: each request runs a function the test passes in.

Tests read as a sequence of requests from one browser (WebTest keeps the
cookie jar), with the code each request runs inline. The app and its
client are the conformance suite's own (:mod:`tipsessions.scripted`); the
helpers below add what only this project's tests need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tipsessions.config import load_settings
from tipsessions.conformance.browser import (
    SECRET,
    Browser,
    CallCounter,
    ScriptHandler,
    backend_of,
    plant_session_id,
    rotate_secrets,
)
from tipsessions.runtime import Runtime

__all__ = [
    "SECRET",
    "Browser",
    "CallCounter",
    "ScriptHandler",
    "backend_of",
    "build_backend",
    "plant_session_id",
    "rotate_secrets",
    "store",
    "stored_key",
]


def store(key: str, value: Any) -> Callable[[Any], None]:
    """A request script that stores ``value`` under ``key`` in the default session."""
    return lambda h: h.session.__setitem__(key, value)


def stored_key(browser: Browser, cookie_name: str = "session") -> str:
    """The storage key on the server that the browser's session cookie points to."""
    cookie = browser.cookie(cookie_name)
    assert cookie is not None
    session_id, _ = Runtime.of(browser.app).keyring.unsign(cookie_name, cookie, None)
    return str(backend_of(browser).storage_key(session_id.decode()))


def build_backend(name: str, **options: Any) -> Any:
    """Backend ``name`` with these options, built as an app builds it, outside any app."""
    settings = load_settings({"tipsessions": {"secret_key": SECRET, name: options}})
    return Runtime(settings).backend(name)
