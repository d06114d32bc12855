"""How the redis backend reaches Redis: one server, a Redis Cluster, or the master of a
Sentinel group, each through redis-py's own client for it.

Everything that can be checked without a server is checked when the backend
is built, as :class:`~tipsessions.ConfigError` naming the setting: redis-py
hands an unknown URL option to the connection class as a keyword argument,
which would fail every request with a ``TypeError`` instead.

What happens once connected is redis-py's: ``RedisCluster`` follows
``MOVED`` and ``ASK`` redirections and reloads the slot map after a
failover; a Sentinel-managed pool asks the Sentinels for the master whenever
it opens a connection, and drops its connections when a master turns out to
be a replica. One thing it leaves to its caller: a forced failover (``SENTINEL
FAILOVER``) keeps the old master accepting writes for some ten seconds,
until the Sentinels demote it, and pooled connections would go on writing
there; those writes vanish when it becomes a replica. So the backend asks
the Sentinels for the master at most once every :data:`MASTER_CHECK_INTERVAL`
seconds, and the pool moves over when the answer changes.
"""

from __future__ import annotations

# redis-py types part of its API only (ClusterNode, Sentinel, parse_url).
# mypy: disable-error-code="no-untyped-call"
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..errors import ConfigError

#: Seconds between two questions to the Sentinels about where the master is.
MASTER_CHECK_INTERVAL = 1.0

#: Query options of a URL that go through to redis-py. Timeouts and retries
#: have settings of their own; anything else is refused.
URL_OPTIONS = frozenset({"db", "max_connections", "health_check_interval", "socket_keepalive"})
#: Further options of a ``rediss://`` URL.
TLS_URL_OPTIONS = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile"}
    | {"ssl_check_hostname"}
)


@dataclass
class Topology:
    """What a backend needs to talk to Redis, checked but not yet connected."""

    #: Where Redis is, for messages: host and port, never the URL's password.
    address: str
    #: Builds the client; may connect (a cluster loads its slot map).
    build: Callable[[], Any]
    #: Called before each command; moves a Sentinel pool to a new master.
    follow: Callable[[Any], None] = field(default=lambda client: None)


def topology(where: str, options: Mapping[str, Any]) -> Topology:
    """The :class:`Topology` the settings describe; :class:`ConfigError` if it cannot work.

    ``where`` is the backend's section, ``tipsessions.<backend>``.
    """
    url = str(options["url"])
    url_options = _url_options(url, f"{where}.url")
    timeouts = {
        "socket_connect_timeout": options["connect_timeout"],
        "socket_timeout": options["socket_timeout"],
    }
    # A dropped connection is retried once, at once: redis-py's default
    # retries with backoff would turn a hung server into a wait of seconds.
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    if options["cluster"]:
        return _cluster(url, url_options, options, where, timeouts)
    if options["sentinels"] is not None:
        return _sentinel(url_options, options, where, timeouts, retry)
    return Topology(
        address=address_of(url),
        build=lambda: redis.Redis.from_url(url, retry=retry, **timeouts),
    )


def check_topology(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One server, a Cluster or Sentinels: the options of each, never two at once.

    Returns ``startup_nodes`` and ``sentinels`` as lists of ``(host, port)``.
    """
    if not options["url"].startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{where}.url", "must start with redis://, rediss:// or unix://")
    nodes = check_nodes(options["startup_nodes"], f"{where}.startup_nodes", empty_ok=True)
    if nodes and not options["cluster"]:
        raise ConfigError(f"{where}.startup_nodes", "only applies with cluster: True")
    sentinels, service_name = options["sentinels"], options["service_name"]
    if sentinels is not None:
        sentinels = check_nodes(sentinels, f"{where}.sentinels")
        if options["cluster"]:
            raise ConfigError(
                f"{where}.sentinels",
                "a Redis Cluster fails over by itself: give either cluster or sentinels",
            )
        if service_name is None:
            raise ConfigError(
                f"{where}.service_name", "is required with sentinels: the master's name"
            )
    elif service_name is not None:
        raise ConfigError(f"{where}.service_name", "only applies with sentinels")
    return {"startup_nodes": nodes, "sentinels": sentinels}


def check_nodes(value: Any, where: str, *, empty_ok: bool = False) -> list[tuple[str, int]]:
    """``[("host", port), ...]``; ``"host:port"`` strings are taken too (environment variables)."""
    shape = f'must be a list of ("host", port) pairs or "host:port" strings, not {value!r}'
    if not isinstance(value, (list, tuple)) or not (value or empty_ok):
        raise ConfigError(where, shape)
    nodes = []
    for node in value:
        if isinstance(node, str):
            host, _, port_text = node.rpartition(":")
            port: Any = int(port_text) if port_text.isdigit() else None
            node = (host.strip("[]"), port)
        if not (isinstance(node, (list, tuple)) and len(node) == 2):
            raise ConfigError(where, shape)
        host, port = node
        if not (isinstance(host, str) and host) or isinstance(port, bool):
            raise ConfigError(where, shape)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(where, f"{port!r} is not a TCP port, in {node!r}")
        nodes.append((host, port))
    return nodes


def _cluster(
    url: str,
    url_options: dict[str, Any],
    options: Mapping[str, Any],
    where: str,
    timeouts: dict[str, Any],
) -> Topology:
    if "path" in url_options:
        raise ConfigError(f"{where}.url", "a Redis Cluster is reached over TCP, not a socket")
    if url_options.get("db", 0) != 0:
        raise ConfigError(f"{where}.url", "a Redis Cluster has database 0 only")
    if "{" in options["prefix"] or "}" in options["prefix"]:
        # The braces would make part of the prefix every key's hash tag:
        # every session in one slot, on one node.
        raise ConfigError(f"{where}.prefix", "must not contain { or } with cluster: True")
    extra = [ClusterNode(host, port) for host, port in options["startup_nodes"]]
    nodes = [address_of(url)] + [f"{host}:{port}" for host, port in options["startup_nodes"]]
    return Topology(
        address=",".join(nodes),
        build=lambda: RedisCluster(
            url=url,
            startup_nodes=list(extra),
            # Redirections are followed inside the client; this bounds only
            # the retries after a node failed or the cluster was down.
            retry=Retry(NoBackoff(), 1),
            **timeouts,
        ),
    )


def _sentinel(
    url_options: dict[str, Any],
    options: Mapping[str, Any],
    where: str,
    timeouts: dict[str, Any],
    retry: Retry,
) -> Topology:
    if "path" in url_options:
        raise ConfigError(f"{where}.url", "Sentinels name a TCP address, not a socket")
    # The Sentinels say where the master is; the URL gives only the rest.
    connection = {k: v for k, v in url_options.items() if k not in ("host", "port")}
    if connection.pop("connection_class", None) is SSLConnection:
        connection["ssl"] = True
    sentinels = list(options["sentinels"])
    service_name = options["service_name"]
    sentinel_list = ",".join(f"{host}:{port}" for host, port in sentinels)
    checked = [0.0]

    def build() -> Any:
        # A Sentinel that is down is skipped for the next one, not retried.
        asking = {"retry": Retry(NoBackoff(), 0), **timeouts}
        manager = Sentinel(sentinels, sentinel_kwargs=asking, **timeouts)
        return manager.master_for(service_name, retry=retry, **connection)

    def follow(client: Any) -> None:
        now = time.monotonic()
        if now - checked[0] >= MASTER_CHECK_INTERVAL:
            checked[0] = now
            # Best effort: with the Sentinels unreachable the master may well
            # be fine, and the command itself will tell.
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                client.connection_pool.get_master_address()

    return Topology(address=f"{service_name}@{sentinel_list}", build=build, follow=follow)


def _url_options(url: str, where: str) -> dict[str, Any]:
    """redis-py's reading of ``url``, after refusing what it would not refuse itself."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as error:
        raise ConfigError(where, str(error)) from error
    allowed = URL_OPTIONS | (TLS_URL_OPTIONS if parts.scheme == "rediss" else frozenset())
    for option in parse_qs(parts.query, keep_blank_values=True):
        if option not in allowed:
            raise ConfigError(
                where,
                f"unknown connection option {option!r} in the URL; it takes "
                f"{', '.join(sorted(allowed))} (timeouts, cluster and sentinels are "
                "settings of their own)",
            )
    database = unquote(parts.path).strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise ConfigError(where, f"the database must be a number, not {database!r}")
    try:
        return dict(parse_url(url))
    except ValueError as error:
        raise ConfigError(where, str(error)) from error


def address_of(url: str) -> str:
    """Where the server is, for messages: never the URL, which may carry a password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    return f"[{host}]:{parts.port or 6379}" if ":" in host else f"{host}:{parts.port or 6379}"


def describe(error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    if isinstance(error, ResponseError):
        # Redis's own refusal (READONLY, CROSSSLOT, CLUSTERDOWN, ...) by name.
        return f"{type(error).__name__}: {reason}"
    return reason


def close_all(clients: list[Any]) -> None:
    for client in clients:
        client.close()
