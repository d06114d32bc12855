"""What only the redis backend has to get right, against a real redis-server.

The behaviour every backend shares is in test_contract.py; here are the
hash layout and its merge script, expiry on every key, and servers that
die or hang.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.apps import Browser, backend_of, stored_key
from tests.servers import ServerProcess
from tests.servers import redis_url as url_of
from tipsessions import BackendUnavailable
from tipsessions.backends import WriteResult
from tipsessions.backends.redis import RedisBackend
from tipsessions.record import ChangeSet, Record


def browser_on(url: str, prefix: str = "t:", **settings: Any) -> Browser:
    options = {"url": url, "prefix": prefix, "connect_timeout": 1.0, "socket_timeout": 1.0}
    return Browser(default_backend="redis", redis=options, **settings)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client to look at what the backend stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def backend(redis_url: str, unique_prefix: str) -> RedisBackend:
    return backend_of(browser_on(redis_url, unique_prefix))


@pytest.fixture
def key(unique_prefix: str) -> str:
    return unique_prefix + "a" * 64


def test_every_write_and_touch_leaves_an_expiry(
    backend: RedisBackend, raw: redis.Redis, key: str
) -> None:
    backend.put(key, Record(data={"a": 1}, created=1), 100)
    assert 98 <= raw.ttl(key) <= 100
    _, version = backend.read(key)
    assert backend.update(key, ChangeSet(updates={"b": 2}), 200, version) is WriteResult.WRITTEN
    assert 198 <= raw.ttl(key) <= 200
    assert backend.touch(key, 300) is True
    assert 298 <= raw.ttl(key) <= 300
    backend.put(key, Record(tombstone=True), 5)
    assert 3 <= raw.ttl(key) <= 5
    assert backend.touch(key, 300) is False  # a tombstone keeps the grace it was given
    assert 3 <= raw.ttl(key) <= 5
    raw.delete(key)
    assert backend.touch(key, 300) is False


def test_sessions_saved_through_the_app_expire(
    redis_url: str, raw: redis.Redis, unique_prefix: str
) -> None:
    browser = browser_on(redis_url, unique_prefix, server_ttl=1000, session_refresh_interval=0)
    browser(lambda h: h.session.__setitem__("a", 1))
    assert 998 <= raw.ttl(stored_key(browser)) <= 1000
    browser(lambda h: h.session.add_flash("hi"))
    assert 998 <= raw.ttl(stored_key(browser)) <= 1000
    raw.expire(stored_key(browser), 10)
    browser(lambda h: h.session["a"])  # read only, refresh due: a touch
    assert 998 <= raw.ttl(stored_key(browser)) <= 1000


def test_values_come_back_exactly_as_stored(
    redis_url: str, raw: redis.Redis, unique_prefix: str
) -> None:
    data = {
        "ratio": 0.1 + 0.2,
        "tiny": 5e-324,
        "huge": 2**64 + 1,
        "ключ ✓": "значение 🍪",
        "名前": ["東京", {"ß": 1.1}],
        # Session keys that look like the layout's own fields stay data.
        "c": "not the creation time",
        "t": 1,
        "n": None,
        "f:flash": "not a flash",
        "": "empty key",
    }
    browser = browser_on(redis_url, unique_prefix)
    browser(lambda h: h.session.update(data))
    browser(lambda h: h.session.__setitem__("third", 1 / 3))  # merged by the script
    stored = browser(lambda h: dict(h.session))
    assert stored == {**data, "third": 1 / 3}
    assert [repr(stored[k]) for k in ("ratio", "tiny", "third")] == [
        "0.30000000000000004",
        "5e-324",
        "0.3333333333333333",
    ]
    fields = raw.hgetall(stored_key(browser))
    assert fields[b"d:ratio"] == b"0.30000000000000004"
    assert fields[b"d:third"] == b"0.3333333333333333"


def test_flashes_read_back_in_the_order_they_were_added(backend: RedisBackend, key: str) -> None:
    record = Record(
        data={"a": 1},
        flashes={
            "_flash": [["id1", "one", None], ["id2", "two", "info"]],
            "_e": [["id3", 3, None]],
        },
        created=1,
    )
    backend.put(key, record, 60)
    assert backend.read(key)[0] == record
    # One request shows "one" and "two" and adds "four"; another adds "five".
    shown = ChangeSet(
        flashes_read={"_flash": {"id1", "id2"}}, flashes_added={"_flash": [["id4", "four", None]]}
    )
    other = ChangeSet(flashes_added={"_flash": [["id5", "five", None]]})
    assert backend.update(key, shown, 60, None) is WriteResult.WRITTEN
    assert backend.update(key, other, 60, None) is WriteResult.WRITTEN
    # Replayed after a dropped connection, a save changes nothing more.
    assert backend.update(key, other, 60, None) is WriteResult.WRITTEN
    current, _ = backend.read(key)
    assert current is not None
    assert current.flashes == {
        "_flash": [["id4", "four", None], ["id5", "five", None]],
        "_e": [["id3", 3, None]],
    }


def test_merge_outcomes(backend: RedisBackend, key: str) -> None:
    assert backend.update(key, ChangeSet(updates={"a": 1}), 60, None) is WriteResult.GONE
    backend.put(key, Record(data={"a": 1}, flashes={"_f": [["x", 1, None]]}, created=1), 60)
    changes = ChangeSet(deleted={"a"}, flashes_read={"_f": {"x"}})
    assert backend.update(key, changes, 60, None) is WriteResult.DELETED
    assert backend.read(key) == (None, None)
    backend.put(key, Record(tombstone=True), 60)
    assert backend.update(key, ChangeSet(updates={"a": 1}), 60, None) is WriteResult.GONE
    assert backend.read(key)[0] == Record(tombstone=True)


def command_calls(server: redis.Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in server.info("commandstats").items()}


def test_a_merge_is_one_script_call_not_a_read_modify_write(
    killable_redis: ServerProcess,
) -> None:
    # A private server: nobody else moves its counters.
    url = url_of(killable_redis.address)
    backend = backend_of(browser_on(url))
    key = "t:" + "b" * 64
    backend.put(key, Record(data={"a": 1}, created=1), 60)
    backend.update(key, ChangeSet(updates={"warm": 1}), 60, None)  # loads the script
    server = redis.Redis.from_url(url)
    try:
        before = command_calls(server)
        backend.update(key, ChangeSet(updates={"b": 2}, deleted={"a"}), 60, None)
        after = command_calls(server)
    finally:
        server.close()
    sent = {name for name in after if after[name] != before.get(name)} - {"cmdstat_info"}
    # Everything else that moved ran inside the script, on the server.
    assert "cmdstat_evalsha" in sent and after["cmdstat_evalsha"] == before["cmdstat_evalsha"] + 1
    assert not sent & {"cmdstat_hgetall", "cmdstat_watch", "cmdstat_multi", "cmdstat_exec"}


def test_the_script_is_loaded_again_when_the_server_forgot_it(
    backend: RedisBackend, raw: redis.Redis, key: str
) -> None:
    backend.put(key, Record(data={"a": 1}, created=1), 60)
    backend.update(key, ChangeSet(updates={"b": 2}), 60, None)
    raw.script_flush()  # what a restart or a failover to a replica does
    assert backend.update(key, ChangeSet(updates={"c": 3}), 60, None) is WriteResult.WRITTEN
    assert backend.read(key)[0] == Record(data={"a": 1, "b": 2, "c": 3}, created=1)


def test_undecodable_records_read_as_missing_and_are_logged(
    backend: RedisBackend, raw: redis.Redis, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tipsessions.security"):
        raw.set(key, "secret-garbage", ex=60)  # not even a hash
        assert backend.read(key) == (None, None)
        assert backend.update(key, ChangeSet(updates={"a": 1}), 60, None) is WriteResult.GONE
        raw.delete(key)
        raw.hset(key, mapping={"c": "1", "d:a": "{secret-garbage"})
        assert backend.read(key) == (None, None)
    assert len(caplog.records) == 2
    assert all(r.name == "tipsessions.security" for r in caplog.records)
    assert "secret-garbage" not in caplog.text


def test_the_address_never_shows_the_password(killable_redis: ServerProcess) -> None:
    killable_redis.stop()
    browser = browser_on(f"redis://:pa55word@{killable_redis.address}/0")
    error = browser.fail(lambda h: h.session.__setitem__("user", "ada"))
    assert isinstance(error, BackendUnavailable)
    assert error.address == killable_redis.address
    assert "pa55word" not in str(error)
