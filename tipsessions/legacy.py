"""Adopting the signed session cookies of webapp2_extras.sessions and tipfy.

Both libraries sign a session cookie the same way::

    base64(JSON) | issue time, whole seconds | hex HMAC-SHA1(secret, "name|base64|time")

With ``legacy_cookies`` set, a session cookie that is not in tipsessions'
format is read that way too, verified with the configured secrets. Its data
becomes a tipsessions session, marked modified, so the same response
re-issues it in tipsessions' own format: each visitor's cookie is adopted
once and never read this way again. Nothing here is used otherwise.

Only the JSON those libraries put in the cookie is read. Their server-side
sessions (datastore, memcache) are pickles behind a ``{"_sid": ...}``
cookie and are never adopted: unpickling is code execution.

:func:`read` is total: whatever a client sends, it returns the data or
``None``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .json_values import decode_json
from .record import Record, new_flash_id

if TYPE_CHECKING:
    from .backends.base import Lifetime

#: Longest value looked at: browsers keep at most 4096 bytes per cookie.
_MAX_CHARS = 4096
#: How far ahead of this server's clock an issue time may be.
_MAX_SKEW = 60
_LEGACY = re.compile(
    r"(?P<data>[A-Za-z0-9+/]*={0,2})\|(?P<time>[0-9]{1,12})\|(?P<mac>[0-9a-f]{40})"
)
_FLASHES = "_flash"

security_log = logging.getLogger("tipsessions.security")


def read(
    cookie_name: str,
    value: str | bytes,
    secrets: Sequence[str],
    max_age: float | None = None,
    now: float | None = None,
) -> tuple[dict[str, Any], float] | None:
    """``(data, issued at)`` of a genuine legacy session cookie, else ``None``.

    ``max_age`` is the idle limit in seconds, as webapp2_extras applied it
    (``None``: no limit). Never raises: a forged, truncated, expired or
    garbled value, or anything that is not a session (a server-side
    session's id), gives ``None``.
    """
    if now is None:
        now = time.time()
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) > _MAX_CHARS:
        return None
    if len(value) > 1 and value[0] == value[-1] == '"':
        value = value[1:-1]  # quoted by old WebOb versions
    # The shape is checked before anything is decoded: no int() of a huge
    # number, no base64 of junk, no HMAC of a megabyte.
    match = _LEGACY.fullmatch(value)
    if match is None:
        return None
    data, issued_text, mac = match["data"], match["time"], match["mac"]
    signed = f"{cookie_name}|{data}|{issued_text}".encode()
    if not any(
        hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha1).hexdigest(), mac)
        for secret in secrets
    ):
        return None
    issued = float(issued_text)
    if issued > now + _MAX_SKEW or (max_age is not None and now - issued >= max_age):
        return None
    try:
        payload = decode_json(base64.b64decode(data, validate=True))
    except ValueError:  # binascii.Error included
        return None
    if not isinstance(payload, dict) or set(payload) == {"_sid"}:
        return None
    return payload, issued


def to_record(data: dict[str, Any], issued: float) -> Record:
    """The tipsessions record of a legacy session's data.

    Pending flashes, which those libraries kept as ``[value, level]`` pairs
    under ``"_flash"`` in the data, become flashes again. The issue time
    stands for the creation time, which the cookie does not carry.
    """
    data = dict(data)
    flashes = data.get(_FLASHES)
    if isinstance(flashes, list) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (str, type(None)))
        for pair in flashes
    ):
        del data[_FLASHES]
        entries = [[new_flash_id(), value, level] for value, level in flashes]
        return Record(data=data, flashes={_FLASHES: entries} if entries else {}, created=issued)
    return Record(data=data, created=issued)


class LegacyCookies:
    """What a backend consults when ``legacy_cookies`` is set."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = tuple(secrets)

    def adopt(
        self,
        backend: str,
        cookie_name: str,
        cookie_values: Sequence[str],
        lifetime: Lifetime,
    ) -> Record | None:
        """The record of the first legacy value that reads, or ``None``.

        The store serves it as a session marked modified, so the same
        response re-issues it in tipsessions' own format.
        """
        now = time.time()
        for value in cookie_values:
            if "|" not in value:
                continue  # tipsessions' own formats never hold one
            found = read(cookie_name, value, self.secrets, lifetime.idle, now)
            record = None if found is None else to_record(*found)
            if record is None or lifetime.outlived(record.created, now):
                # Never the value: it may be someone's valid credential.
                security_log.warning(
                    "rejected the %r cookie of the %s backend (not a live legacy session); "
                    "starting a new session",
                    cookie_name,
                    backend,
                )
                continue
            security_log.info(
                "adopted a legacy %r cookie into the %s backend", cookie_name, backend
            )
            return record
        return None
