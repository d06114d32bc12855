"""Signing and encryption of cookie values, with key rotation.

Every cookie value is bound to its cookie's name (a value copied under
another name does not verify) and carries the time it was issued, which is
what idle expiry is measured from. The first secret signs and encrypts;
every secret verifies and decrypts, so keys rotate without logging anyone
out. Keys are derived once per secret, when the application's settings are
loaded, never per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, TimestampSigner

_NONCE_BYTES = 12
_ENCRYPTED_VERSION = b"\x01"
# Payloads shorter than this never shrink under zlib's header and checksum.
_COMPRESS_FROM = 64


class BadCookie(Exception):
    """A cookie value failed to verify, decrypt or decode, or has expired.

    Internal: the store turns it into a new session and a log line.
    """


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise BadCookie("not base64") from error


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


class _Signer(TimestampSigner):
    """A signer that derives each key once, not on every sign and verify."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache: dict[Any, bytes] = self.__dict__.setdefault("_derived", {})
        derived = cache.get(secret_key)
        if derived is None:
            derived = cache[secret_key] = super().derive_key(secret_key)
        return derived


class Keyring:
    """The application's secrets, turned into the keys each use needs."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("a keyring needs at least one secret")
        self._secrets = tuple(secrets)
        self._aead = [AESGCM(_derive(s, b"tipsessions encrypted cookie")) for s in secrets]
        self._id_keys = [_derive(s, b"tipsessions session id") for s in secrets]
        self._signer = lru_cache(maxsize=256)(self._make_signer)

    def _make_signer(self, cookie_name: str) -> TimestampSigner:
        # itsdangerous signs with the *last* key of its list; ours is the first.
        return _Signer(
            list(reversed(self._secrets)),
            salt=f"tipsessions.cookie:{cookie_name}",
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )

    # -- signed values ------------------------------------------------------

    def sign(self, cookie_name: str, payload: bytes, *, compress: bool = True) -> str:
        """A URL-safe, timestamped, signed value; zlib'd when that is shorter."""
        text = _b64encode(payload)
        if compress and len(payload) >= _COMPRESS_FROM:
            packed = "." + _b64encode(zlib.compress(payload))
            if len(packed) < len(text):
                text = packed
        return self._signer(cookie_name).sign(text).decode("ascii")

    def unsign(self, cookie_name: str, value: str, max_age: int | None) -> tuple[bytes, int]:
        """The payload and the time it was signed; :class:`BadCookie` if not valid."""
        try:
            text, issued = self._signer(cookie_name).unsign(
                value, max_age=max_age, return_timestamp=True
            )
        except BadData as error:
            raise BadCookie(type(error).__name__) from error
        text_str = text.decode("ascii")
        if text_str.startswith("."):
            try:
                payload = zlib.decompress(_b64decode(text_str[1:]))
            except zlib.error as error:
                raise BadCookie("not zlib") from error
        else:
            payload = _b64decode(text_str)
        return payload, int(issued.timestamp())

    # -- encrypted values -----------------------------------------------------

    def encrypt(self, cookie_name: str, payload: bytes) -> str:
        """AES-256-GCM with the cookie name and issue time as associated data.

        Not compressed: compressing before encrypting leaks the content's
        redundancy through the cookie's length.
        """
        header = _ENCRYPTED_VERSION + struct.pack(">Q", int(time.time()))
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[0].encrypt(nonce, payload, header + cookie_name.encode())
        return _b64encode(header + nonce + sealed)

    def decrypt(self, cookie_name: str, value: str, max_age: int | None) -> tuple[bytes, int]:
        raw = _b64decode(value)
        if len(raw) < 9 + _NONCE_BYTES + 16 or raw[:1] != _ENCRYPTED_VERSION:
            raise BadCookie("truncated or unknown format")
        header, nonce, sealed = raw[:9], raw[9 : 9 + _NONCE_BYTES], raw[9 + _NONCE_BYTES :]
        (issued,) = struct.unpack(">Q", header[1:])
        age = int(time.time()) - issued
        if age < 0 or (max_age is not None and age > max_age):
            raise BadCookie("expired")
        for aead in self._aead:
            try:
                return aead.decrypt(nonce, sealed, header + cookie_name.encode()), issued
            except InvalidTag:
                continue
        raise BadCookie("does not decrypt with any key")

    # -- server-side ids ------------------------------------------------------

    def id_hashes(self, session_id: str) -> list[str]:
        """Storage keys of an id, one per secret, the current one first.

        Records are stored under a keyed hash, so a dump of the backend holds
        nothing that can be replayed as a cookie.
        """
        raw = session_id.encode()
        return [hmac.new(key, raw, hashlib.sha256).hexdigest() for key in self._id_keys]
