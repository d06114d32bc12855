"""``securecookie``: the session itself in a signed cookie.

The client can read the data (it is only base64, possibly zlib'd, JSON) but
cannot change it: HMAC-SHA256 over the value, its issue time and the
cookie's name. Nothing is stored on the server, so it needs no set-up, and
nothing can be revoked there either: a copied cookie stays valid until it
expires. Use ``encryptedcookie`` when the client must not read the data.
"""

from __future__ import annotations

from .base import CookieBackend


class SecureCookieBackend(CookieBackend):
    def seal(self, cookie_name: str, payload: bytes) -> str:
        return self.keyring.sign(cookie_name, payload)

    def open(self, cookie_name: str, value: str, max_age: float | None) -> tuple[bytes, float]:
        return self.keyring.unsign(cookie_name, value, max_age)
