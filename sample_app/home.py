"""The front page: a visit counter on the default session."""

from __future__ import annotations

from sample_app.base import PageHandler
from sample_app.catalogue import cart_lines


class HomeHandler(PageHandler):
    def get(self) -> None:
        # A plain value in the default (cookie) session: every view writes it.
        self.session["visits"] = self.session.get("visits", 0) + 1
        self.render(
            "home.html",
            visits=self.session["visits"],
            cart_count=sum(line.quantity for line in cart_lines(self.cart.get("lines", {}))),
        )


class AboutHandler(PageHandler):
    """A page that reads no session: no session is loaded, no cookie is set."""

    def get(self) -> None:
        self.render("about.html")
