"""The raw floors: a session's work done with nothing but the standard library and a client.

A signed cookie session cannot cost less than verifying and decoding its
value on the way in and encoding and signing it on the way out; a server
session cannot cost less than the client calls it makes. These callables
do exactly that, once per call, so that the libraries' overheads can be
read as multiples of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from .payloads import PAYLOADS, SECRET

_KEY = hashlib.sha256(SECRET.encode()).digest()


def _sign(data: dict[str, Any]) -> bytes:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    signature = base64.urlsafe_b64encode(hmac.new(_KEY, body, hashlib.sha256).digest())
    return body + b"." + signature


def _verify(value: bytes) -> dict[str, Any]:
    body, _, signature = value.rpartition(b".")
    expected = hmac.new(_KEY, body, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.urlsafe_b64decode(signature), expected):
        raise ValueError("bad signature")
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
    return data


def signed(size: str) -> str:
    """The payload as a signed value, the size of a cookie session's cookie."""
    return _sign(PAYLOADS[size]).decode()


def cookie_read(size: str) -> Callable[[], Any]:
    """Verify and decode one signed value: the least a cookie session's read can do."""
    value = _sign(PAYLOADS[size])
    return lambda: _verify(value)


def cookie_write(size: str) -> Callable[[], Any]:
    """Read, change one value, encode and sign: the least a cookie session's write can do."""
    value = _sign(PAYLOADS[size])

    def read_and_write() -> bytes:
        data = _verify(value)
        data["visits"] = data.get("visits", 0) + 1
        return _sign(data)

    return read_and_write


def stored_value(size: str) -> bytes:
    """The payload as a server backend would store it, give or take its framing."""
    return json.dumps(PAYLOADS[size], separators=(",", ":")).encode()


def memcache_get(address: str, key: str, size: str) -> Callable[[], Any]:
    """One pymemcache ``get`` of the payload."""
    from pymemcache.client.base import Client

    client = Client(address, connect_timeout=1.0, timeout=1.0)
    client.set(key, stored_value(size), noreply=False)
    return lambda: client.get(key)


def redis_get(url: str, key: str, size: str) -> Callable[[], Any]:
    """One redis-py ``GET`` of the payload."""
    import redis

    client = redis.Redis.from_url(url)
    client.set(key, stored_value(size))
    return lambda: client.get(key)
