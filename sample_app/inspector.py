"""A page that shows where each session lives and how its cookie is set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sample_app.auth import REMEMBER_SECONDS
from sample_app.base import CART_COOKIE, REMEMBER_COOKIE, PageHandler
from tipsessions import Session

#: What the cookie of a session holds, by backend.
COOKIE_HOLDS = {
    "securecookie": "the data itself, signed: readable by the user, not changeable",
    "encryptedcookie": "the data itself, encrypted and authenticated",
}
SERVER_COOKIE_HOLDS = "a random session id, signed; the data stays on the server"

#: Where the data lives, by backend.
DATA_LIVES_IN = {
    "securecookie": "the browser",
    "encryptedcookie": "the browser",
    "memory": "this process's memory (lost at restart)",
    "file": "one file per session on this machine",
    "memcache": "memcached",
    "redis": "Redis",
    "datastore": "Google Cloud Datastore",
}


def describe_attributes(attributes: dict[str, Any]) -> list[str]:
    """Cookie attributes as a browser sees them in ``Set-Cookie``."""
    max_age = attributes.get("max_age")
    domain = attributes.get("domain")
    samesite = attributes.get("samesite")
    return [
        f"Path={attributes.get('path') or '/'}",
        f"Domain={domain}" if domain else "no Domain: this host only",
        f"Max-Age={max_age}" if max_age is not None else "no Max-Age: ends with the browser",
        "Secure" if attributes.get("secure") else "not Secure: sent over http too",
        "HttpOnly" if attributes.get("httponly") else "not HttpOnly: readable by scripts",
        f"SameSite={samesite}" if samesite else "no SameSite",
    ]


def chosen_max_age(session: Session, configured: int | None) -> int | None:
    """The cookie's Max-Age for ``session``: its ``set_max_age()`` choice, if it made one.

    ``session.max_age`` is ``None`` when the session follows the
    configuration, 0 when it chose to end with the browser.
    """
    if session.max_age is None:
        return configured
    return session.max_age or None


def describe_lifetime(session: Session) -> str:
    if session.max_age is None:
        return "as configured"
    if not session.max_age:
        return "until the browser closes, chosen with set_max_age(None)"
    days, rest = divmod(session.max_age, 24 * 3600)
    length = f"{days} days" if not rest else f"{session.max_age} seconds"
    return f"{length} after its last use, chosen with set_max_age({session.max_age})"


@dataclass(frozen=True)
class CookieReport:
    """One cookie of the sample, as the inspector page lists it."""

    name: str
    purpose: str
    backend: str | None
    holds: str
    lives_in: str
    attributes: list[str]
    sent_bytes: int | None
    keys: list[str]
    #: For sessions: how long they live.
    lifetime: str | None = None
    #: The data is kept on the server, under an id.
    server_side: bool = False
    #: For server-side sessions: a short mark of the id (SessionStore.fingerprint).
    fingerprint: str | None = None


class SessionsHandler(PageHandler):
    def get(self) -> None:
        settings = self.session_store.settings
        session_cookie = dict(settings.cookie_args)
        self.render(
            "sessions.html",
            reports=[
                self._session_report(
                    settings.cookie_name,
                    "the default session: visit counter, sign-in, flashes",
                    settings.default_backend,
                    session_cookie,
                    self.session,
                ),
                self._session_report(
                    CART_COOKIE,
                    "a named session: the shopping cart",
                    self.cart_backend,
                    session_cookie,
                    self.cart,
                ),
                CookieReport(
                    name=REMEMBER_COOKIE,
                    purpose="a plain cookie set with session_store.set_cookie()",
                    backend=None,
                    holds="the email to prefill on the sign-in form, unsigned",
                    lives_in="the browser",
                    attributes=describe_attributes({**session_cookie, "max_age": REMEMBER_SECONDS}),
                    sent_bytes=self._sent_bytes(REMEMBER_COOKIE),
                    keys=[],
                ),
            ],
        )

    def _session_report(
        self,
        name: str,
        purpose: str,
        backend: str,
        attributes: dict[str, Any],
        session: Session,
    ) -> CookieReport:
        max_age = chosen_max_age(session, attributes.get("max_age"))
        return CookieReport(
            name=name,
            purpose=purpose,
            backend=backend,
            holds=COOKIE_HOLDS.get(backend, SERVER_COOKIE_HOLDS),
            lives_in=DATA_LIVES_IN.get(backend, "a custom backend"),
            attributes=describe_attributes({**attributes, "max_age": max_age}),
            sent_bytes=self._sent_bytes(name),
            keys=sorted(session),
            lifetime=describe_lifetime(session),
            server_side=backend not in COOKIE_HOLDS,
            fingerprint=self.session_store.fingerprint(name),
        )

    def _sent_bytes(self, name: str) -> int | None:
        value = self.request.cookies.get(name)
        return None if value is None else len(value.encode())
