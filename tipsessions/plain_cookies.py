"""A handler's own cookies, plain and signed, set beside its sessions.

Like session cookies they wait in the store's buffer until the response
exists, and the last write of a name wins; a signed cookie uses the
session cookies' keys and format, bound to its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import webapp2

from .backends.base import log_rejected
from .config import Settings, check_cookie_name, merge_cookie_args
from .cookies import BadCookie
from .headers import cookie_values
from .json_values import check_json, decode_json, dumps
from .runtime import Runtime

# RFC 6265's cookie-octets: anything else (a space, a comma, a semicolon, a
# quote, non-ASCII) breaks or splits the header. Its quoted form is left
# out: WebOb refuses it and browsers keep the quotes as part of the value.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


class _Default:
    def __repr__(self) -> str:
        return "<config>"


#: Stands for "the configured value" in signatures.
DEFAULT: Any = _Default()


class PlainCookies:
    """The cookie methods of :class:`~tipsessions.SessionStore`."""

    request: webapp2.Request
    runtime: Runtime
    settings: Settings
    #: Cookie name -> (value, or None to expire it; attributes), written at save.
    _cookies: dict[str, tuple[str | None, Mapping[str, Any]]]

    def _cookie_args(self, given: Mapping[str, Any] | None, where: str) -> Mapping[str, Any]:
        if not given:
            return self.settings.cookie_args
        return merge_cookie_args(given, where, base=self.settings.cookie_args)

    def set_cookie(self, name: str, value: str, **cookie_args: Any) -> None:
        """Set a cookie on the response; the last call for a name wins.

        Attributes default to the configured ``cookie_args``.
        """
        check_cookie_name(name, "name")
        if not isinstance(value, str):
            raise TypeError(f"cookie values are strings, not {type(value).__name__}")
        if not _COOKIE_VALUE.fullmatch(value):
            raise ValueError(
                f"cookie {name!r}: a cookie value holds printable ASCII except spaces, "
                "'\"', ',', ';' and '\\'; encode it first (urllib.parse.quote, base64) "
                "or store it with set_secure_cookie"
            )
        self._cookies[name] = (value, self._cookie_args(cookie_args, "set_cookie"))

    def delete_cookie(self, name: str, path: str = "/", domain: str | None = None) -> None:
        """Expire a cookie on the response; the last call for a name wins."""
        check_cookie_name(name, "name")
        args = {**self.settings.cookie_args, "path": path, "domain": domain}
        self._cookies[name] = (None, args)

    def get_secure_cookie(self, name: str, max_age: int | None = DEFAULT) -> dict[str, Any] | None:
        """The dict stored by :meth:`set_secure_cookie`, or ``None``.

        ``None`` also for a cookie that was tampered with, signed under
        another name, or is older than ``max_age`` (default
        ``session_max_age``) seconds.
        """
        if max_age is DEFAULT:
            max_age = self.settings.session_max_age
        reason = ""
        for value in cookie_values(self.request.environ, name):
            try:
                payload, _ = self.runtime.keyring.unsign(name, value, max_age)
                data = decode_json(payload)
            except (BadCookie, ValueError) as error:
                reason = str(error) or type(error).__name__
                continue
            if isinstance(data, dict):
                return data
            reason = "not a dict"
        if reason:
            log_rejected("secure cookie", name, reason)
        return None

    def set_secure_cookie(self, name: str, value: Mapping[str, Any], **cookie_args: Any) -> None:
        """Set a signed, timestamped cookie holding a JSON dict."""
        if not isinstance(value, Mapping):
            raise TypeError(f"secure cookies hold a dict, not {type(value).__name__}")
        value = dict(value)
        check_json(name, value)
        self.set_cookie(name, self.runtime.keyring.sign(name, dumps(value)), **cookie_args)
