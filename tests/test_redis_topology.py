"""The redis backend's connection settings: checked when built, and every failure typed.

A Cluster, a Sentinel group and single servers are real (session-wide
fixtures); these cases point the backend at the wrong one of them on
purpose and expect :class:`~tipsessions.BackendUnavailable`, never a raw
redis-py error.
"""

from __future__ import annotations

from typing import Any

import pytest
import webob.exc

from tests.apps import Browser, build_backend
from tests.servers import RedisCluster, SentinelGroup, free_port
from tipsessions import BackendUnavailable, ConfigError

CONFIG_ERRORS = [
    ({"url": "redis://h/0?cluster=true"}, "url"),
    ({"url": "redis://h/0?socket_timeout=3"}, "url"),
    ({"url": "redis://h/0?max_connections=many"}, "url"),
    ({"url": "redis://h/0?ssl_cert_reqs=none"}, "url"),
    ({"url": "redis://h/sessions"}, "url"),
    ({"url": "redis://h:port/0"}, "url"),
    ({"cluster": "yes"}, "cluster"),
    ({"cluster": True, "url": "redis://h/2"}, "url"),
    ({"cluster": True, "url": "unix:///run/redis.sock"}, "url"),
    ({"cluster": True, "prefix": "{shop}:"}, "prefix"),
    ({"cluster": True, "startup_nodes": ["h"]}, "startup_nodes"),
    ({"startup_nodes": [("h", 7000)]}, "startup_nodes"),
    ({"sentinels": [("h", 26379)]}, "service_name"),
    ({"service_name": "main"}, "service_name"),
    ({"sentinels": [], "service_name": "main"}, "sentinels"),
    ({"sentinels": [("h", 0)], "service_name": "main"}, "sentinels"),
    ({"sentinels": [("h", 26379)], "service_name": "main", "cluster": True}, "sentinels"),
    ({"sentinels": [("h", 26379)], "service_name": "main", "url": "unix:///r.sock"}, "url"),
]


@pytest.mark.parametrize("options, key", CONFIG_ERRORS)
def test_a_setting_that_cannot_work_is_a_config_error_naming_it(
    options: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_backend("redis", **options)
    assert raised.value.key == f"tipsessions.redis.{key}"


def test_settings_that_work_are_taken() -> None:
    for options in (
        {"url": "rediss://h:6380/0?ssl_cert_reqs=none&max_connections=20"},
        {"cluster": True, "startup_nodes": [("h2", 7001), "h3:7002"]},
        {"sentinels": [["h1", 26379], "h2:26379"], "service_name": "main"},
    ):
        build_backend("redis", **options)  # nothing connects before the first request


def test_an_unknown_url_option_fails_the_first_request_as_a_config_error() -> None:
    browser = Browser(default_backend="redis", redis={"url": "redis://h/0?cluster=true"})
    error = browser.fail(lambda h: h.session)
    assert isinstance(error, ConfigError) and "'cluster'" in str(error)


def attempt(browser: Browser, script: Any) -> BaseException | None:
    """Run ``script`` in a request; the exception that failed it, or None."""
    causes: list[BaseException] = []

    def keep(request: Any, response: Any, error: BaseException) -> Any:
        causes.append(error)
        return webob.exc.HTTPInternalServerError()

    browser.app.error_handlers[500] = keep
    try:
        browser(script, status="*")
    finally:
        del browser.app.error_handlers[500]
    return causes[0] if causes else None


def new_sessions(url: str, **options: Any) -> list[BaseException | None]:
    """What each of twelve new sessions on ``url`` failed with (None: it was saved)."""
    browser = Browser(default_backend="redis", redis={"url": url, "prefix": "topology:", **options})
    outcomes = []
    for visitor in range(12):
        browser.forget_cookies()
        outcomes.append(attempt(browser, lambda h, v=visitor: h.session.__setitem__("v", v)))
    return outcomes


def assert_typed(outcomes: list[BaseException | None], reason: str) -> None:
    errors = [error for error in outcomes if error is not None]
    assert errors, "every request succeeded"
    for error in errors:
        assert isinstance(error, BackendUnavailable), repr(error)
        assert error.backend == "redis" and reason in error.reason


def test_a_single_server_url_at_a_cluster_node_fails_typed(redis_cluster: RedisCluster) -> None:
    host, port = redis_cluster.nodes[0]
    # Keys of the other nodes' slots get MOVED, which only a cluster client follows.
    assert_typed(new_sessions(f"redis://{host}:{port}/0"), "MovedError")


def test_cluster_mode_against_a_plain_server_fails_typed(redis_url: str) -> None:
    assert_typed(new_sessions(redis_url, cluster=True), "luster")


def test_a_replica_url_fails_typed(redis_sentinels: SentinelGroup) -> None:
    master = redis_sentinels.master()
    (replica,) = [server for server in redis_sentinels.servers if server is not master]
    assert_typed(new_sessions(f"redis://{replica.address}/0"), "ReadOnlyError")


def test_a_sentinel_url_fails_typed(redis_sentinels: SentinelGroup) -> None:
    sentinel = redis_sentinels.sentinels[0]
    assert_typed(new_sessions(f"redis://{sentinel.address}/0"), "unknown command")


def test_sentinels_that_know_no_such_master_fail_typed(redis_sentinels: SentinelGroup) -> None:
    outcomes = new_sessions(
        "redis://127.0.0.1/0", sentinels=redis_sentinels.sentinel_nodes, service_name="nope"
    )
    assert all(outcomes)
    assert_typed(outcomes, "No master found for 'nope'")


def test_sentinels_that_are_all_down_fail_typed() -> None:
    sentinels = [("127.0.0.1", free_port()) for _ in range(3)]
    outcomes = new_sessions("redis://127.0.0.1/0", sentinels=sentinels, service_name="main")
    assert all(outcomes)
    assert_typed(outcomes, "No master found")
