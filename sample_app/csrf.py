"""Cross-site request forgery protection for the sample's forms.

SameSite=Lax cookies already keep other sites from posting with the user's
session in current browsers; a per-session token in every form covers the
rest. The token lives in the default session, so it is replaced whenever
the session is (at login and logout).
"""

from __future__ import annotations

import hmac
import secrets

import webapp2

from tipsessions import Session

FIELD_NAME = "csrf_token"
SESSION_KEY = "_csrf"


def token(session: Session) -> str:
    """This session's form token, created on first use."""
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(32)
    return str(session[SESSION_KEY])


def verify(handler: webapp2.RequestHandler, session: Session) -> None:
    """Abort with 403 unless the posted token matches the session's."""
    expected = session.get(SESSION_KEY) or ""
    posted = handler.request.POST.get(FIELD_NAME, "")
    if not expected or not hmac.compare_digest(posted.encode(), expected.encode()):
        handler.abort(403, detail="The form expired; reload the page and try again.")
