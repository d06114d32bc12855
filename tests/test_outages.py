"""Every server-side backend facing a server that is down, dies or hangs.

Each case runs on a private server of its own (the ``killable_*``
fixtures), so stopping it disturbs no other test. What must hold: requests
that do not touch sessions are served; a request that does fails with
:class:`~tipsessions.BackendUnavailable` naming the backend and the
server's address, promptly, never a bare socket or gRPC error, never a
hang; ``on_backend_error="degrade"`` serves an empty session that is never
saved; and the app recovers when the server is back, without a restart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.apps import Browser, backend_of, stored_key
from tests.servers import ServerProcess, redis_url
from tipsessions import BackendUnavailable


@dataclass
class Outage:
    backend: str
    server: ServerProcess
    settings: dict[str, Any]
    #: Seconds within which a failure must be reported: the configured
    #: timeouts plus slack for a busy shared machine. A hang takes far longer.
    prompt: float

    def browser(self, **extra: Any) -> Browser:
        return Browser(default_backend=self.backend, **self.settings, **extra)


@pytest.fixture(params=["memcache", "redis", "datastore"])
def outage(request: pytest.FixtureRequest) -> Outage:
    name = request.param
    if name == "memcache":
        server = request.getfixturevalue("killable_memcached")
        options = {"servers": [server.address], "connect_timeout": 1.0, "timeout": 1.0}
        return Outage(name, server, {"memcache": options}, prompt=5)
    if name == "redis":
        server = request.getfixturevalue("killable_redis")
        url = redis_url(server.address)
        options = {"url": url, "connect_timeout": 1.0, "socket_timeout": 1.0}
        return Outage(name, server, {"redis": options}, prompt=5)
    server = request.getfixturevalue("killable_datastore")
    options = {"namespace": request.getfixturevalue("unique_namespace"), "timeout": 2.0}
    return Outage(name, server, {"datastore": options}, prompt=15)


def assert_names_the_server(error: BaseException, outage: Outage) -> None:
    assert isinstance(error, BackendUnavailable)
    assert (error.backend, error.address) == (outage.backend, outage.server.address)
    assert outage.backend in str(error) and outage.server.address in str(error)


def test_the_app_serves_while_the_server_is_down_and_recovers(outage: Outage) -> None:
    outage.server.stop()
    browser = outage.browser()
    assert browser(lambda h: "no session needed") == "no session needed"

    started = time.monotonic()
    error = browser.fail(lambda h: h.session.__setitem__("user", "ada"))
    assert time.monotonic() - started < outage.prompt
    assert_names_the_server(error, outage)

    outage.server.start()
    deadline = time.monotonic() + outage.prompt
    while True:  # a client may need a moment to reconnect
        try:
            browser(lambda h: h.session.__setitem__("user", "ada"))
            break
        except Exception:
            assert time.monotonic() < deadline, "not back after the server was"
    assert browser(lambda h: h.session["user"]) == "ada"


def test_a_server_killed_mid_run_fails_fast(outage: Outage) -> None:
    browser = outage.browser()
    for n in range(3):  # pooled connections to the process about to die
        browser(lambda h, n=n: h.session.__setitem__("n", n))
    outage.server.kill()
    for _ in range(2):
        started = time.monotonic()
        error = browser.fail(lambda h: h.session.get("n"))
        assert time.monotonic() - started < outage.prompt
        assert_names_the_server(error, outage)


def test_a_hung_server_times_out_instead_of_hanging(outage: Outage) -> None:
    browser = outage.browser()
    browser(lambda h: h.session.__setitem__("user", "ada"))
    outage.server.pause()  # accepts connections, never answers
    try:
        started = time.monotonic()
        error = browser.fail(lambda h: h.session.get("user"))
        assert time.monotonic() - started < outage.prompt
        assert_names_the_server(error, outage)
    finally:
        outage.server.resume()


def test_degrade_serves_an_empty_session_that_is_never_saved(outage: Outage) -> None:
    browser = outage.browser(on_backend_error="degrade")
    browser(lambda h: h.session.__setitem__("user", "ada"))
    outage.server.pause()
    try:
        assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
        browser(lambda h: h.session.__setitem__("cart", [1]))
        assert browser.set_cookies() == []
    finally:
        outage.server.resume()
    # The stored session was never overwritten by the degraded requests.
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}


@pytest.mark.parametrize("outage", ["memcache", "redis"], indirect=True)
def test_after_a_restart_dead_pooled_connections_fail_no_request(outage: Outage) -> None:
    browser = outage.browser()
    browser(lambda h: h.session.__setitem__("n", 1))
    backend, key = backend_of(browser), stored_key(browser)
    # Reads at once leave several idle connections in the client's pool.
    at_once = threading.Barrier(8)

    def read() -> None:
        at_once.wait()
        backend.read(key)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outage.server.kill()
    outage.server.start()
    # Every pooled connection is dead now; none of them may fail a request.
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
