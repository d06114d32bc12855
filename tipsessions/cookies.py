"""Signing and encryption of cookie values, with key rotation.

Every cookie value is bound to its cookie's name (a value copied under
another name does not verify) and carries the time it was issued, in
milliseconds, which idle expiry is measured from. The first secret signs and
encrypts; every secret verifies and decrypts, so keys rotate without logging
anyone out. Keys are derived once per secret and cookie name, never per
request.

A signed value is one URL-safe base64 string of::

    format (1 byte) | issued at, ms (6 bytes) | payload | HMAC-SHA256 (32 bytes)

One base64 pass and one HMAC, from itsdangerous' HMAC layer, with no
``datetime`` and no separators to split: this is the path every request
that reads a session takes. Whatever a client sends, the only failure here
is :class:`BadCookie`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
import zlib
from collections.abc import Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous.signer import HMACAlgorithm, Signer

_PLAIN = 2
_DEFLATED = 3
_ENCRYPTED = 2
_TIME_BYTES = 6
_HEADER_BYTES = 1 + _TIME_BYTES
_MAC_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
#: Longest value looked at: browsers keep at most 4096 bytes per cookie.
MAX_VALUE_CHARS = 4096
#: Most bytes a compressed payload may inflate to. A browser-sized cookie of
#: real session data never comes near; a zip bomb stops here.
MAX_INFLATED_BYTES = 64 * 1024
#: Plain cookies longer than this are compressed. zlib costs far more than
#: signing (about 20 us per KB), so it runs only where it makes a session
#: fit that otherwise would not.
COMPRESS_FROM = 3000
#: How far in the future an issue time may lie: clocks of several app
#: servers disagree a little, and a value is never older than its issue.
MAX_CLOCK_SKEW_MS = 60_000

_BASE64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


class _HMACSHA256(HMACAlgorithm):
    """itsdangerous' HMAC algorithm through the one-shot ``hmac.digest``, its fastest path."""

    def __init__(self) -> None:
        super().__init__(hashlib.sha256)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha256")


_HMAC = _HMACSHA256()


class BadCookie(Exception):
    """A cookie value failed to verify, decrypt or decode, or has expired.

    Internal: the store turns it into a new session and a log line.
    """


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text.isascii() or len(text) > MAX_VALUE_CHARS:
        raise BadCookie("not a cookie value of ours")
    data = text.encode("ascii")
    # Deleting the alphabet leaves what is foreign to it: faster than a regex.
    if not data or data.translate(None, _BASE64URL_ALPHABET):
        raise BadCookie("not a cookie value of ours")
    try:
        return binascii.a2b_base64(data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4))
    except binascii.Error as error:
        raise BadCookie("not base64") from error


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def check_age(issued_ms: int, max_age: float | None) -> None:
    """Refuse a value issued in the future, or ``max_age`` seconds ago or more."""
    age = now_ms() - issued_ms
    if age < -MAX_CLOCK_SKEW_MS:
        raise BadCookie("issued in the future")
    if max_age is not None and age >= max_age * 1000:
        raise BadCookie("expired")


def inflate(data: bytes) -> bytes:
    """zlib data inflated to at most :data:`MAX_INFLATED_BYTES`, or :class:`BadCookie`."""
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise BadCookie("not zlib") from error
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise BadCookie("compressed payload too large or truncated")
    return payload


class Keyring:
    """The application's secrets, turned into the keys each use needs."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("a keyring needs at least one secret")
        self._secrets = tuple(secrets)
        self._aead = [AESGCM(_derive(s, b"tipsessions encrypted cookie")) for s in secrets]
        self.signing_keys = lru_cache(maxsize=256)(self._derive_signing_keys)

    def _derive_signing_keys(self, cookie_name: str) -> tuple[bytes, ...]:
        """One key per secret for this cookie name, the signing one first."""
        signer = Signer(
            self._secrets,
            salt=f"tipsessions.cookie:{cookie_name}",
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )
        return tuple(signer.derive_key(secret) for secret in self._secrets)

    def sign(self, cookie_name: str, payload: bytes, *, compress: bool = True) -> str:
        """A URL-safe, timestamped value bound to ``cookie_name``."""
        kind = _PLAIN
        if compress and len(payload) > COMPRESS_FROM:
            kind, payload = _DEFLATED, zlib.compress(payload)
        head = bytes((kind,)) + now_ms().to_bytes(_TIME_BYTES, "big") + payload
        key = self.signing_keys(cookie_name)[0]
        return _b64encode(head + _HMAC.get_signature(key, head))

    def unsign(self, cookie_name: str, value: str, max_age: float | None) -> tuple[bytes, float]:
        """The payload and when it was signed (seconds); :class:`BadCookie` if not valid."""
        return self.verify(cookie_name, value, max_age)[:2]

    def verify(
        self, cookie_name: str, value: str, max_age: float | None = None
    ) -> tuple[bytes, float, bool]:
        """``(payload, issued at, signed with the current secret)``, or :class:`BadCookie`.

        The last item tells a value that must be signed again before its
        secret is retired.
        """
        raw = _b64decode(value)
        head, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(head) < _HEADER_BYTES or head[0] not in (_PLAIN, _DEFLATED):
            raise BadCookie("truncated or unknown format")
        keys = self.signing_keys(cookie_name)
        current = _HMAC.verify_signature(keys[0], head, mac)
        if not current and not any(_HMAC.verify_signature(key, head, mac) for key in keys[1:]):
            raise BadCookie("signature does not match any key")
        issued = int.from_bytes(head[1:_HEADER_BYTES], "big")
        check_age(issued, max_age)
        payload = head[_HEADER_BYTES:]
        if head[0] == _DEFLATED:
            payload = inflate(payload)
        return payload, issued / 1000, current

    def encrypt(self, cookie_name: str, payload: bytes) -> str:
        """AES-256-GCM with the cookie name and issue time as associated data.

        Not compressed: compressing before encrypting leaks the content's
        redundancy through the cookie's length.
        """
        header = bytes((_ENCRYPTED,)) + now_ms().to_bytes(_TIME_BYTES, "big")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[0].encrypt(nonce, payload, header + cookie_name.encode())
        return _b64encode(header + nonce + sealed)

    def decrypt(self, cookie_name: str, value: str, max_age: float | None) -> tuple[bytes, float]:
        """The payload and when it was sealed (seconds); :class:`BadCookie` if not valid."""
        return self.open_sealed(cookie_name, value, max_age)[:2]

    def open_sealed(
        self, cookie_name: str, value: str, max_age: float | None = None
    ) -> tuple[bytes, float, bool]:
        """``(payload, issued at, sealed with the current secret)``, or :class:`BadCookie`."""
        raw = _b64decode(value)
        if len(raw) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or raw[0] != _ENCRYPTED:
            raise BadCookie("truncated or unknown format")
        header, body = raw[:_HEADER_BYTES], raw[_HEADER_BYTES:]
        nonce, sealed = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        issued = int.from_bytes(header[1:], "big")
        check_age(issued, max_age)
        associated = header + cookie_name.encode()
        for index, aead in enumerate(self._aead):
            try:
                return aead.decrypt(nonce, sealed, associated), issued / 1000, index == 0
            except InvalidTag:
                continue
        raise BadCookie("does not decrypt with any key")
