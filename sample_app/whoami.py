"""Token authentication with transient values: no cookie, nothing stored.

API clients send a token with every request (``?token=...`` or
``Authorization: Bearer ...``). The handler puts the token's user into the
session as *transient* values: every ``session["email"]`` lookup, in code and
in templates, sees it for this request, yet the session stays unmodified, so
nothing is saved and no cookie is sent. Browser users who signed in with a
password are found the same way, through the stored value.
"""

from __future__ import annotations

import json

from sample_app.accounts import account_for_token
from sample_app.base import PageHandler

_BEARER = "bearer "


class TokenAuthHandler(PageHandler):
    def authenticate_token(self) -> bool:
        """Sign this request in by its token, if it has a valid one."""
        token = self.request.GET.get("token", "")
        header = self.request.headers.get("Authorization", "")
        if header.lower().startswith(_BEARER):
            token = header[len(_BEARER) :].strip()
        account = account_for_token(token) if token else None
        if account is None:
            return False
        self.session.set_t("email", account.email)
        self.session.set_t("name", account.name)
        self.session.set_t("auth_method", "token")
        return True


class WhoAmIHandler(TokenAuthHandler):
    """The HTML view: who is asking, and how they proved it."""

    def get(self) -> None:
        self.authenticate_token()
        self.render("whoami.html")


class ApiWhoAmIHandler(TokenAuthHandler):
    """The JSON view an API client calls."""

    def get(self) -> None:
        by_token = self.authenticate_token()
        email = self.session.get("email")
        if email is None:
            self.response.status_int = 401
            self.response.headers["WWW-Authenticate"] = 'Bearer realm="sample"'
        self.response.content_type = "application/json"
        self.response.write(
            json.dumps(
                {
                    "email": email,
                    "authenticated_by": "token" if by_token else ("cookie" if email else None),
                }
            )
        )
