"""``securecookie``: the session itself in a signed cookie.

The client can read the data (base64 JSON, zlib'd only when it would not
fit otherwise) but cannot change it: HMAC-SHA256 over the value, its issue
time and the cookie's name. Nothing is stored on the server, so it needs no
set-up, and nothing can be revoked there either: a copied cookie stays valid
until it expires. Use ``encryptedcookie`` when the client must not read the
data.
"""

from __future__ import annotations

from .cookie import CookieBackend


class SecureCookieBackend(CookieBackend):
    def seal(self, cookie_name: str, payload: bytes) -> str:
        return self.keyring.sign(cookie_name, payload)

    def open(self, cookie_name: str, value: str) -> tuple[bytes, float, bool]:
        return self.keyring.verify(cookie_name, value)
