"""Your devices: the signed-in user's sessions, each of which can be signed out.

OWASP's ASVS asks that users see their active sessions and can end any or
all of them (3.3.4), and that after a password change they can end every
session but the current one (3.3.3). Signing in binds the session to the
account with ``set_user()``, which is what lists it here, cookie session
though it is; the registry is configured under ``users`` (config/development.py).
"""

from __future__ import annotations

import re
import time

from sample_app.accounts import change_password
from sample_app.base import PageHandler

#: (pattern in the User-Agent header, name), the first match wins: Edge and
#: Chrome both say "Chrome", Chrome and Safari both say "Safari".
_BROWSERS = [
    (re.compile(r"Edg/"), "Edge"),
    (re.compile(r"Firefox/"), "Firefox"),
    (re.compile(r"Chrom(e|ium)/"), "Chrome"),
    (re.compile(r"Safari/"), "Safari"),
    (re.compile(r"curl/"), "curl"),
]
_SYSTEMS = [
    (re.compile(r"iPhone|iPad"), "iOS"),
    (re.compile(r"Android"), "Android"),
    (re.compile(r"Windows"), "Windows"),
    (re.compile(r"Mac OS X|Macintosh"), "macOS"),
    (re.compile(r"Linux"), "Linux"),
]


def describe_device(user_agent: str | None) -> str:
    """A short name for a browser, such as "Firefox on Windows", from its User-Agent."""
    text = user_agent or ""
    browser = next((name for pattern, name in _BROWSERS if pattern.search(text)), "A browser")
    system = next((name for pattern, name in _SYSTEMS if pattern.search(text)), None)
    return f"{browser} on {system}" if system else browser


def ago(timestamp: float, now: float | None = None) -> str:
    """How long ago ``timestamp`` was, in the words a devices page uses."""
    seconds = max(0, int((now or time.time()) - timestamp))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


class DevicesPage(PageHandler):
    """A page for signed-in visitors only."""

    def signed_in_email(self) -> str:
        email = self.session.get("email")
        if not isinstance(email, str):
            self.session.add_flash("Sign in to see your devices.", "info")
            self.redirect_to("login", _abort=True)
        return str(email)


class DevicesHandler(DevicesPage):
    def get(self) -> None:
        email = self.signed_in_email()
        self.render("devices.html", devices=self.session_store.user_sessions(email), ago=ago)


class SignOutDeviceHandler(DevicesPage):
    def post(self) -> None:
        self.verify_form()
        email = self.signed_in_email()
        fingerprint = self.request.POST.get("fingerprint", "")
        if not self.session_store.revoke_session(email, fingerprint):
            self.session.add_flash("That device was already signed out.", "info")
        elif self.session.user_id is None:
            # It was this device: the session is already empty, its cookie expired.
            self.session.add_flash("You are signed out.", "info")
            self.redirect_to("home", _abort=True)
        else:
            self.session.add_flash("That device is signed out.", "success")
        self.redirect_to("devices", _abort=True)


def _others(count: int) -> str:
    return f"{count} other device{'' if count == 1 else 's'}"


class SignOutOthersHandler(DevicesPage):
    def post(self) -> None:
        self.verify_form()
        email = self.signed_in_email()
        ended = self.session_store.revoke_user(email, keep_current=True)
        self.session.add_flash(f"Signed out {_others(ended)}.", "success")
        self.redirect_to("devices", _abort=True)


class ChangePasswordHandler(DevicesPage):
    def post(self) -> None:
        self.verify_form()
        email = self.signed_in_email()
        post = self.request.POST
        if not change_password(email, post.get("current", ""), post.get("new", ""), self.passwords):
            self.session.add_flash("Your current password was not right.", "error")
        elif post.get("sign_out_others"):
            # ASVS 3.3.3: whoever knew the old password may hold a session.
            ended = self.session_store.revoke_user(email, keep_current=True)
            self.session.add_flash(f"Password changed; signed out {_others(ended)}.", "success")
        else:
            self.session.add_flash("Password changed.", "success")
        self.redirect_to("devices", _abort=True)
