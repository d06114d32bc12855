"""Idle and absolute limits hold to the millisecond, on every backend, with a controlled clock.

A session is served 50 ms before its limit and not 50 ms after it. Servers
keep a record at least until its limit (their TTLs count whole seconds, so
they round up and may outlive it: the check on load is the exact one).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
import redis
import time_machine

from tests.apps import Browser, backend_of, stored_key
from tests.conftest import SERVER_BACKENDS

#: A fixed moment with a fractional part, so that truncation would show.
T0 = 1_900_000_000.375
LIMIT = 10
LIMITS = {"idle": "session_max_age", "absolute": "session_absolute_max_age"}


def store(key: str, value: Any) -> Callable[[Any], None]:
    return lambda h: h.session.__setitem__(key, value)


def peek(h: Any) -> tuple[bool, dict[str, Any]]:
    return h.session.new, dict(h.session)


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize(("offset", "served"), [(-0.05, True), (0.05, False)])
def test_a_session_lives_exactly_its_limit(
    settings: dict[str, Any], kind: str, offset: float, served: bool
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        browser = Browser(**settings, **{LIMITS[kind]: LIMIT})
        browser(store("user", "ada"))
        clock.move_to(T0 + LIMIT + offset)
        expected = (False, {"user": "ada"}) if served else (True, {})
        assert browser(peek) == expected


@pytest.mark.parametrize("kind", list(LIMITS))
def test_activity_moves_only_the_idle_limit(settings: dict[str, Any], kind: str) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        browser = Browser(**settings, **{LIMITS[kind]: LIMIT})
        browser(store("n", 0))
        clock.move_to(T0 + 6)
        browser(store("n", 1))  # re-issues the cookie: a new idle window
        clock.move_to(T0 + LIMIT + 0.05)
        if kind == "idle":
            assert browser(peek) == (False, {"n": 1})
        else:
            assert browser(peek) == (True, {})


def seconds_kept(backend_name: str, browser: Browser, now: float) -> float:
    """How long after ``now`` the server keeps the browser's record."""
    backend, key = backend_of(browser), stored_key(browser)
    if backend_name == "memory":
        return float(backend._entries[key][0] - now)
    if backend_name == "file":
        return os.stat(backend._file(key)).st_mtime - now
    if backend_name == "datastore":
        entity = backend.client.get(backend.client.key(backend.kind, key), timeout=30)
        return float(entity["expires"].timestamp() - now)
    if backend_name == "redis":
        # Redis counts in real time, which the frozen clock does not move.
        with redis.Redis.from_url(backend.options["url"]) as client:
            return int(client.pttl(key)) / 1000
    server = backend._servers.server(key)
    host, port = server.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"mg {key} t\r\n".encode())
        reply = sock.recv(256).split()
    (ttl,) = [token for token in reply if token.startswith(b"t")]
    return float(ttl[1:])


@pytest.mark.parametrize("backend_name", SERVER_BACKENDS)
def test_servers_keep_a_record_at_least_until_its_limit(
    backend_name: str, settings: dict[str, Any]
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        browser = Browser(**settings, session_absolute_max_age=LIMIT)
        browser(store("n", 1))
        # 2.4 s are left: a TTL in whole seconds must round up, to 3.
        clock.move_to(T0 + LIMIT - 2.4)
        browser(store("n", 2))
        assert seconds_kept(backend_name, browser, T0 + LIMIT - 2.4) >= 2.4
        clock.move_to(T0 + LIMIT - 0.05)
        assert browser(peek) == (False, {"n": 2})
