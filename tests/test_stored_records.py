"""A stored record is untrusted input, like a cookie, on every server-side backend.

Whatever a store hands back -- bytes that are not UTF-8, nesting 100,000
levels deep, the wrong schema, a pickle -- reads as a new session through
a real request: never a 500, one line on ``tipsessions.security``, and
nothing of the content in it. The records are planted on the real servers
under the key of a live session, as a corrupt disk, a foreign writer or an
attacker with write access to the store would leave them.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import redis
from google.cloud import datastore
from hypothesis import given
from hypothesis import strategies as st

from tests.apps import Browser, backend_of, stored_key
from tests.conftest import SERVER_BACKENDS, backend_settings
from tipsessions.backends import redis as redis_backend
from tipsessions.record import Record

#: Every planted record carries this, so a log line holding content shows.
MARKER = b"secret-7f3a"
DEEP = 100_000

UNDECODABLE: dict[str, bytes] = {
    "any bytes": b"\x80\xff" + MARKER + b"\x00\xfe",
    "deep nesting": b"[" * DEEP + b'"' + MARKER + b'"' + b"]" * DEEP,
    "deep nesting inside a record": (
        b'{"c":1,"d":{"k":' + b"[" * DEEP + b'"' + MARKER + b'"' + b"]" * DEEP + b"}}"
    ),
    "wrong schema": b'{"d":["' + MARKER + b'"],"c":"yesterday"}',
    "a pickle": pickle.dumps({"d": {MARKER.decode(): 1}, "c": 1}, protocol=4),
}


def plant(browser: Browser, backend_name: str, raw: bytes) -> None:
    """Replace the browser's stored record with ``raw``, straight on the server."""
    backend, key = backend_of(browser), stored_key(browser)
    expires = time.time() + 3600
    if backend_name == "memory":
        backend._entries[key] = (expires, raw)
    elif backend_name == "file":
        path = Path(backend._file(key))
        path.write_bytes(raw)
        os.utime(path, (expires, expires))
    elif backend_name == "memcache":
        assert backend._servers.run(key, "set", key, raw, expire=3600, noreply=False)
    elif backend_name == "redis":
        # Inside the hash layout, where the backend decodes: a session value,
        # or for the wrong schema a creation time that is not a number.
        fields = {"c": raw, "d:k": "1"} if raw.startswith(b'{"d":[') else {"c": "1", "d:k": raw}
        with raw_redis(backend) as client:
            client.delete(key)
            client.hset(key, mapping={**fields, "n": 0})
    elif backend_name == "datastore":
        entity = datastore.Entity(backend.client.key(backend.kind, key), ("data",))
        entity.update(data=raw, expires=backend_expiry(expires), tombstone=False)
        backend.client.put(entity)
    else:
        raise AssertionError(backend_name)


def raw_redis(backend: Any) -> redis.Redis:
    """A plain client of the backend's server, to write what the backend never would."""
    return redis.Redis.from_url(backend.options["url"])


def backend_expiry(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


@pytest.fixture(params=SERVER_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("kind", list(UNDECODABLE))
def test_an_undecodable_record_reads_as_a_new_session(
    backend_name: str,
    settings: dict[str, Any],
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    plant(browser, backend_name, UNDECODABLE[kind])

    with caplog.at_level(logging.DEBUG, logger="tipsessions"):
        seen = browser(lambda h: (h.session.new, dict(h.session)))
    assert seen == (True, {})
    assert browser.response is not None and browser.response.status_int == 200
    (line,) = caplog.records
    assert line.name == "tipsessions.security" and line.levelno == logging.WARNING
    assert "undecodable" in line.getMessage()
    assert MARKER.decode() not in caplog.text and "[[[[" not in caplog.text

    # The visitor carries on: a new session is written and read back.
    browser(lambda h: h.session.__setitem__("user", "bob"))
    assert browser(lambda h: (h.session.new, dict(h.session))) == (False, {"user": "bob"})


def test_redis_data_that_is_not_a_hash_reads_as_a_new_session(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(**backend_settings("redis", request, tmp_path))
    browser(lambda h: h.session.__setitem__("user", "ada"))
    backend, key = backend_of(browser), stored_key(browser)
    with raw_redis(backend) as client:
        client.delete(key)
        client.set(key, UNDECODABLE["any bytes"])
    with caplog.at_level(logging.DEBUG, logger="tipsessions"):
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    assert len(caplog.records) == 1
    assert MARKER.decode() not in caplog.text


def decodes_or_refuses(decode: Callable[[], Any]) -> None:
    """The only outcomes of decoding untrusted data: a record, or ValueError."""
    try:
        result = decode()
    except ValueError:
        return
    assert isinstance(result, Record)


JSON_ISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@hypothesis.settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_record_or_value_error(raw: bytes) -> None:
    decodes_or_refuses(lambda: Record.from_json(raw))


@hypothesis.settings(max_examples=300, deadline=None)
@given(JSON_ISH, st.sampled_from([b"", b"[" * 40, b'{"d":{"k":', b'{"c":1,"d":']))
def test_json_of_any_shape_gives_a_record_or_value_error(value: Any, prefix: bytes) -> None:
    try:
        text = json.dumps(value)
    except ValueError:
        return
    decodes_or_refuses(lambda: Record.from_json(prefix + text.encode()))
    decodes_or_refuses(lambda: Record.from_json(text))


REDIS_FIELD = st.sampled_from([b"c", b"m", b"t", b"n", b"d:k", b"f:x", b"d:\xff", b"f:"])


@hypothesis.settings(max_examples=300, deadline=None)
@given(st.dictionaries(REDIS_FIELD | st.binary(max_size=8), st.binary(max_size=40), max_size=6))
def test_any_redis_hash_gives_a_record_or_value_error(fields: dict[bytes, bytes]) -> None:
    decodes_or_refuses(lambda: redis_backend.decode(fields))
