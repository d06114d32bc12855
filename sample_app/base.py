"""The handler every page of the sample derives from."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import tipsessions
from sample_app import csrf
from sample_app.accounts import CHANGED_PASSWORDS
from sample_app.rendering import render
from sample_app.settings import cart_backend
from tipsessions import Session
from tipsessions.templates import context

#: Cookie of the cart, a named session next to the default one.
CART_COOKIE = "cart"
#: Plain cookie remembering the last email used to sign in.
REMEMBER_COOKIE = "remember_email"


class PageHandler(tipsessions.BaseHandler):
    """A tipsessions handler that renders the sample's templates."""

    @property
    def cart(self) -> Session:
        """The shopping cart: a named session on a server-side backend.

        Only an id travels in its cookie; the contents stay on the server, so
        the cart can grow past what a cookie holds.
        """
        return self.session_store.get_session(CART_COOKIE, backend=self.cart_backend)

    @property
    def passwords(self) -> MutableMapping[str, bytes]:
        """Password hashes changed since this application started."""
        changed: MutableMapping[str, bytes] = self.app.registry.setdefault(CHANGED_PASSWORDS, {})
        return changed

    @property
    def cart_backend(self) -> str:
        return cart_backend(self.app.config)

    def render(self, template_name: str, **values: Any) -> None:
        """Write a page; the session is loaded only if the page reads it."""
        page = {
            **context(self),
            # Lazy like the rest: only pages with a form create the token.
            "csrf_token": lambda: csrf.token(self.session),
            "csrf_field": csrf.FIELD_NAME,
            "path": self.request.path,
            "uri_for": self.uri_for,
            **values,
        }
        self.response.write(render(template_name, page))

    def verify_form(self) -> None:
        """Refuse a POST whose form did not come from this session's pages."""
        csrf.verify(self, self.session)
