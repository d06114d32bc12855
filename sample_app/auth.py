"""Signing in and out: the session lifecycle around authentication."""

from __future__ import annotations

from sample_app.accounts import check_password
from sample_app.base import REMEMBER_COOKIE, PageHandler
from sample_app.devices import describe_device

#: How long the browser keeps the remembered email: thirty days.
REMEMBER_SECONDS = 30 * 24 * 3600
#: How long "keep me signed in" keeps the sessions: thirty days.
STAY_SIGNED_IN_SECONDS = 30 * 24 * 3600


class LoginHandler(PageHandler):
    def get(self) -> None:
        self.render("login.html", remembered_email=self.request.cookies.get(REMEMBER_COOKIE, ""))

    def post(self) -> None:
        self.verify_form()
        email = self.request.POST.get("email", "").strip().lower()
        account = check_password(email, self.request.POST.get("password", ""), self.passwords)
        if account is None:
            self.session.add_flash("Wrong email or password.", "error")
            self.redirect_to("login", _abort=True)
            return

        # A new id for every session at the moment privileges change: an id
        # someone planted or saw before the login (session fixation) is now
        # worthless. The data, including the visit count, carries over.
        self.session.regenerate_id()
        self.cart.regenerate_id()
        # Bound to the account, the session shows on "Your devices" and can be
        # signed out from anywhere, although it is a cookie.
        self.session.set_user(account.email, label=describe_device(self.request.user_agent))
        self.session["email"] = account.email
        self.session["name"] = account.name

        # "Keep me signed in": both sessions outlive the browser for thirty
        # days of inactivity; otherwise their cookies end when it closes. The
        # choice is stored with each session and holds on later requests.
        lifetime = STAY_SIGNED_IN_SECONDS if self.request.POST.get("stay") else None
        self.session.set_max_age(lifetime)
        self.cart.set_max_age(lifetime)

        if self.request.POST.get("remember"):
            self.session_store.set_cookie(REMEMBER_COOKIE, account.email, max_age=REMEMBER_SECONDS)
        else:
            self.session_store.delete_cookie(REMEMBER_COOKIE)

        self.session.add_flash(f"Welcome, {account.name}! You are signed in.", "success")
        self.redirect_to("home", _abort=True)


class LogoutHandler(PageHandler):
    def post(self) -> None:
        self.verify_form()
        # invalidate() deletes the stored data and expires the cookie; a
        # session cookie copied earlier no longer reaches the server-side cart.
        self.session.invalidate()
        self.cart.invalidate()
        # The remembered email stays: it prefills the next sign-in, which is
        # what the visitor asked for. Unticking the box at sign-in forgets it.
        # Stored after invalidate(): it starts a fresh, anonymous session.
        self.session.add_flash("You are signed out; your session and cart are gone.", "info")
        self.redirect_to("home", _abort=True)
