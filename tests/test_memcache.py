"""What only the memcache backend has to get right, against real memcached.

The behaviour every backend shares is in test_contract.py; here are
memcached's own edges: several servers, acknowledged writes, the 30-day
expiry rule, check-and-set merging, and servers that die or hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymemcache.client.base import Client

from tests.apps import Browser, backend_of, store, stored_key
from tests.servers import ServerProcess
from tipsessions import BackendUnavailable, ConfigError
from tipsessions.backends import WriteResult
from tipsessions.backends.memcache import MemcacheBackend
from tipsessions.record import ChangeSet, Record

DAY = 24 * 3600


def browser_on(servers: list[str], prefix: str = "t:", **settings: Any) -> Browser:
    memcache = {"servers": servers, "prefix": prefix, "connect_timeout": 1.0, "timeout": 1.0}
    return Browser(default_backend="memcache", memcache=memcache, **settings)


def holds(server: str, key: str) -> bool:
    client = Client(server, connect_timeout=1, timeout=1)
    try:
        return client.get(key) is not None
    finally:
        client.close()


def remaining_ttl(server: str, key: str) -> int:
    """The seconds memcached will keep ``key``, from its meta-get command."""
    client = Client(server, connect_timeout=1, timeout=1)
    try:
        reply = client.raw_command(f"mg {key} t", b"\r\n")
    finally:
        client.close()
    flag = reply.split()[-1]
    assert reply.startswith(b"HD") and flag.startswith(b"t"), reply
    return int(flag[1:])


@pytest.fixture
def memcached(memcached_servers: list[str]) -> str:
    return memcached_servers[0]


@pytest.fixture
def backend(memcached: str, unique_prefix: str) -> MemcacheBackend:
    return backend_of(browser_on([memcached], unique_prefix))


@pytest.fixture
def raw(memcached: str) -> Iterator[Client]:
    """A plain client to look at what the backend stored."""
    client = Client(memcached, connect_timeout=1, timeout=1, default_noreply=False)
    yield client
    client.close()


def test_sessions_spread_over_every_server(
    memcached_servers: list[str], unique_prefix: str
) -> None:
    browser = browser_on(memcached_servers, unique_prefix)
    keys = []
    for visitor in range(24):
        browser.forget_cookies()
        browser(store("visitor", visitor))
        keys.append(stored_key(browser))
    found = {server: sum(holds(server, key) for key in keys) for server in memcached_servers}
    assert sum(found.values()) == len(keys), "each session lives on exactly one server"
    assert all(found.values()), f"some server holds no session: {found}"


def test_a_dead_server_fails_its_sessions_loudly_and_spares_the_others(
    memcached: str, killable_memcached: ServerProcess, unique_prefix: str
) -> None:
    browser = browser_on([memcached, killable_memcached.address], unique_prefix)
    cookies: dict[bool, str] = {}
    while len(cookies) < 2:
        browser.forget_cookies()
        browser(lambda h: h.session.__setitem__("user", "ada"))
        on_killable = holds(killable_memcached.address, stored_key(browser))
        cookies.setdefault(on_killable, browser.cookie() or "")
    killable_memcached.kill()

    browser.set_cookie("session", cookies[False])
    assert browser(lambda h: (h.session.new, dict(h.session))) == (False, {"user": "ada"})
    # Never read as "no such session" (a silent logout), nor moved to the
    # other server, where it would come back to life once this one returns.
    browser.set_cookie("session", cookies[True])
    error = browser.fail(lambda h: h.session.get("user"))
    assert isinstance(error, BackendUnavailable)
    assert killable_memcached.address in str(error)


def test_refused_write_raises_instead_of_losing_the_session(
    memcached: str, unique_prefix: str
) -> None:
    browser = browser_on([memcached], unique_prefix)
    browser(lambda h: h.session.__setitem__("small", 1))
    # Over memcached's 1 MB item limit: fire-and-forget would report success.
    error = browser.fail(lambda h: h.session.__setitem__("blob", "x" * 2_000_000))
    assert isinstance(error, BackendUnavailable)
    assert error.backend == "memcache" and "too large" in error.reason
    assert browser(lambda h: dict(h.session)) == {"small": 1}


@pytest.mark.parametrize("ttl", [DAY, 60 * DAY])
def test_lifetimes_over_30_days_are_kept(
    backend: MemcacheBackend, memcached: str, unique_prefix: str, ttl: int
) -> None:
    # memcached reads a relative expiry over 30 days as a unix time in 1970:
    # the record would be dropped at once.
    key = unique_prefix + "a" * 64
    backend.put(key, Record(data={"a": 1}, created=1), ttl)
    assert ttl - 5 <= remaining_ttl(memcached, key) <= ttl + 2  # one more, as memcached rounds
    _, version = backend.read(key)
    assert backend.update(key, ChangeSet(updates={"b": 2}), ttl, version) is WriteResult.WRITTEN
    assert ttl - 5 <= remaining_ttl(memcached, key) <= ttl + 2  # one more, as memcached rounds
    assert backend.touch(key, ttl) is True
    assert ttl - 5 <= remaining_ttl(memcached, key) <= ttl + 2  # one more, as memcached rounds
    assert backend.read(key)[0] == Record(data={"a": 1, "b": 2}, created=1)


def test_a_one_second_tombstone_lives_a_whole_second(
    backend: MemcacheBackend, unique_prefix: str
) -> None:
    # memcached's clock ticks in whole seconds: an item set for 1 s just
    # before a tick would be gone right after it.
    key = unique_prefix + "9" * 64
    backend.put(key, Record(tombstone=True), 1)
    time.sleep(0.95)
    assert backend.read(key)[0] == Record(tombstone=True)


def test_a_60_day_session_lives_through_the_app(memcached: str, unique_prefix: str) -> None:
    browser = browser_on([memcached], unique_prefix, server_ttl=60 * DAY)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    assert browser(lambda h: (h.session.new, dict(h.session))) == (False, {"user": "ada"})
    assert remaining_ttl(memcached, stored_key(browser)) > 59 * DAY


def test_prefix_that_memcached_cannot_take_is_a_config_error(memcached: str) -> None:
    for prefix in ("two words:", "x" * 190):
        browser = browser_on([memcached], prefix)
        error = browser.fail(lambda h: h.session)
        assert isinstance(error, ConfigError) and error.key == "tipsessions.memcache.prefix"


def test_undecodable_record_reads_as_missing_and_is_logged(
    backend: MemcacheBackend, raw: Client, unique_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = unique_prefix + "b" * 64
    raw.set(key, b"\x80secret-garbage", expire=60)
    with caplog.at_level(logging.WARNING, logger="tipsessions.security"):
        assert backend.read(key) == (None, None)
        assert backend.update(key, ChangeSet(updates={"a": 1}), 60, None) is WriteResult.GONE
    assert caplog.records and all(r.name == "tipsessions.security" for r in caplog.records)
    assert "secret-garbage" not in caplog.text


def server_stats(server: str) -> dict[bytes, Any]:
    client = Client(server, connect_timeout=1, timeout=1)
    try:
        return dict(client.stats())
    finally:
        client.close()


def test_an_uncontended_update_is_a_single_cas(killable_memcached: ServerProcess) -> None:
    # A private server: nobody else moves its counters.
    backend = backend_of(browser_on([killable_memcached.address]))
    key = "t:" + "c" * 64
    backend.put(key, Record(data={"a": 1}, created=1), 60)
    _, version = backend.read(key)
    before = server_stats(killable_memcached.address)
    assert backend.update(key, ChangeSet(updates={"b": 2}), 60, version) is WriteResult.WRITTEN
    after = server_stats(killable_memcached.address)
    moved = {name for name in after if name.startswith(b"cmd_") and after[name] != before[name]}
    assert moved == {b"cmd_set"}  # memcached counts a cas among the sets
    assert after[b"cas_hits"] == before[b"cas_hits"] + 1


def test_a_lost_race_merges_into_the_current_record(
    backend: MemcacheBackend, unique_prefix: str
) -> None:
    key = unique_prefix + "d" * 64
    backend.put(key, Record(data={"a": 1}, created=1), 60)
    _, first = backend.read(key)
    _, second = backend.read(key)
    assert backend.update(key, ChangeSet(updates={"b": 2}), 60, second) is WriteResult.WRITTEN
    # Deleting "a" would empty the record this request loaded, but not the
    # current one: the other request's "b" survives.
    assert backend.update(key, ChangeSet(deleted={"a"}), 60, first) is WriteResult.WRITTEN
    assert backend.read(key)[0] == Record(data={"b": 2}, created=1)
    _, version = backend.read(key)
    assert backend.update(key, ChangeSet(deleted={"b"}), 60, version) is WriteResult.DELETED
    assert backend.read(key) == (None, None)


def test_no_update_lands_after_a_delete_or_a_tombstone(
    backend: MemcacheBackend, unique_prefix: str
) -> None:
    key = unique_prefix + "e" * 64
    for retire in (backend.delete, lambda k: backend.put(k, Record(tombstone=True), 60)):
        backend.put(key, Record(data={"a": 1}, created=1), 60)
        _, version = backend.read(key)
        retire(key)
        changes = ChangeSet(updates={"b": 2})
        assert backend.update(key, changes, 60, version) is WriteResult.GONE
        assert backend.read(key)[0] in (None, Record(tombstone=True))


def test_touch_extends_a_live_record_only(
    backend: MemcacheBackend, memcached: str, unique_prefix: str
) -> None:
    key = unique_prefix + "8" * 64
    assert backend.touch(key, 600) is False
    backend.put(key, Record(data={"a": 1}, created=1), 60)
    assert backend.touch(key, 600) is True
    assert 590 <= remaining_ttl(memcached, key) <= 602
    backend.put(key, Record(tombstone=True), 5)  # regenerated meanwhile
    assert backend.touch(key, 600) is False
    assert remaining_ttl(memcached, key) <= 7  # the grace it was given, no more
    assert backend.read(key)[0] == Record(tombstone=True)
