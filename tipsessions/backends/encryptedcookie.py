"""``encryptedcookie``: the session in a cookie the client cannot read.

AES-256-GCM authenticates and encrypts the data; the cookie's name and
issue time are bound in as associated data, so the value neither verifies
under another name nor with a forged age. Like ``securecookie`` it needs no
server and cannot be revoked before it expires.
"""

from __future__ import annotations

from .cookie import CookieBackend


class EncryptedCookieBackend(CookieBackend):
    def seal(self, cookie_name: str, payload: bytes) -> str:
        return self.keyring.encrypt(cookie_name, payload)

    def open(self, cookie_name: str, value: str) -> tuple[bytes, float, bool]:
        return self.keyring.open_sealed(cookie_name, value)
