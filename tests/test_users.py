"""Signing out everywhere: set_user(), user_sessions(), revoke_user(), revoke_session().

A user signs in on several devices (cookie jars) spread over every backend;
the registry lives on memory, file, redis or datastore. Two apps built from
the same settings stand for two app processes: each has its own runtime and
so its own cache of the registry (``tests/test_users_processes.py`` repeats
the essentials with two real app server processes). The clock is
time_machine's, so ``check_interval`` passes without sleeping.
"""

from __future__ import annotations

import http.cookiejar
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
import webapp2
import webtest

import tipsessions
from tests.apps import SECRET, CallCounter, ScriptHandler
from tests.conftest import ALL_BACKENDS, backend_settings
from tests.servers import ServerProcess, redis_url
from tests.test_command_line import run
from tipsessions import BackendUnavailable, ConfigError, UserSession
from tipsessions.backends import ServerBackend
from tipsessions.cookies import Keyring
from tipsessions.record import Record
from tipsessions.runtime import Runtime

CHECK_INTERVAL = 5
SERVER_SIDE = ["file", "redis", "memcache", "datastore"]
EVERY_SHARED_BACKEND = ["securecookie", "encryptedcookie", *SERVER_SIDE]


class Site:
    """One app process: its own runtime, hence its own cache of the registry."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = {"secret_key": SECRET, **settings}
        self.app = webapp2.WSGIApplication(
            [webapp2.Route("/<path:.*>", ScriptHandler)],
            config={"tipsessions": self.settings},
        )

    @property
    def runtime(self) -> Runtime:
        return Runtime.of(self.app)

    @property
    def app_config(self) -> dict[str, Any]:
        return {"tipsessions": self.settings}


class Device:
    """One browser: a cookie jar, used against whichever site a request goes to."""

    def __init__(self, home: Site) -> None:
        self.home = home
        # WebTest's own policy, which lets a test set cookies for its "localhost".
        self.jar = http.cookiejar.CookieJar(policy=webtest.app.CookiePolicy())
        self._clients: dict[int, webtest.TestApp] = {}

    def run(self, script: Callable[[Any], Any], site: Site | None = None, status: int = 200) -> Any:
        site = site or self.home
        client = self._clients.get(id(site))
        if client is None:
            client = self._clients[id(site)] = webtest.TestApp(site.app, cookiejar=self.jar)
        site.app.registry["script"] = script
        site.app.registry["result"] = None
        client.get("/", status=status, expect_errors=status >= 400)
        return site.app.registry["result"]

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def send_cookie(self, name: str, value: str) -> None:
        """Send ``value`` as cookie ``name`` from now on (a copy kept by someone else)."""
        for cookie in [c for c in self.jar if c.name == name]:
            self.jar.clear(cookie.domain, cookie.path, cookie.name)
        client = next(iter(self._clients.values()))
        client.set_cookie(name, value)


def on(handler: Any, backend: str) -> Any:
    """The device's session on ``backend``: each backend has a cookie of its own."""
    return handler.session_store.get_session(f"s-{backend}", backend=backend)


def sign_in(user: str, backend: str, label: str | None = None) -> Callable[[Any], Any]:
    def script(handler: Any) -> None:
        session = on(handler, backend)
        session.regenerate_id()
        session.set_user(user, label=label)
        session["user"] = user

    return script


def whoami(backend: str) -> Callable[[Any], Any]:
    """Who the session on ``backend`` says is signed in: None once it was revoked."""
    return lambda handler: on(handler, backend).get("user")


def sessions_of(user: str, backend: str | None = None) -> Callable[[Any], list[UserSession]]:
    """The user's sessions; ``backend``: as seen from the device's session there."""

    def script(handler: Any) -> list[UserSession]:
        if backend is not None:
            on(handler, backend)
        return list(handler.session_store.user_sessions(user))

    return script


@pytest.fixture
def servers_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Every server-side backend configured, isolated for this test."""
    merged: dict[str, Any] = {}
    for name in SERVER_SIDE:
        merged.update(backend_settings(name, request, tmp_path))
    merged.pop("default_backend")
    return merged


@pytest.fixture(params=["memory", "file", "redis", "datastore"])
def registry_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(servers_settings: dict[str, Any], registry_backend: str) -> dict[str, Any]:
    return {
        **servers_settings,
        "users": {"backend": registry_backend, "check_interval": CHECK_INTERVAL},
    }


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(1_900_000_000, tick=True) as traveller:
        yield traveller


def session_backends(registry_backend: str) -> list[str]:
    """Where the devices keep sessions: every backend; memory only beside a memory registry."""
    extra = ["memory"] if registry_backend == "memory" else []
    return [*EVERY_SHARED_BACKEND, *extra]


def test_a_user_signed_in_on_every_backend_is_signed_out_everywhere(
    settings: dict[str, Any], registry_backend: str, figures: dict[str, Any]
) -> None:
    site = Site(settings)
    backends = session_backends(registry_backend)
    ada = {backend: Device(site) for backend in backends}
    bob = {backend: Device(site) for backend in backends}
    for backend in backends:
        ada[backend].run(sign_in("ada", backend, label=f"ada on {backend}"))
        bob[backend].run(sign_in("bob", backend))
    admin = Device(site)

    listed = admin.run(sessions_of("ada"))
    assert sorted((s.backend, s.name, s.label, s.current) for s in listed) == sorted(
        (b, f"s-{b}", f"ada on {b}", False) for b in backends
    )
    stored = {backend: on_server(site, device, backend) for backend, device in ada.items()}

    ended = admin.run(lambda h: h.session_store.revoke_user("ada"))

    assert ended == len(backends)
    signed_in = {b: d.run(whoami(b)) for b, d in ada.items()}
    assert signed_in == dict.fromkeys(backends)
    for backend, key in stored.items():
        if key is not None:
            assert site.runtime.backend(backend).read(key)[0] is None, backend
    assert admin.run(sessions_of("ada")) == []
    assert {b: d.run(whoami(b)) for b, d in bob.items()} == dict.fromkeys(backends, "bob")
    assert len(admin.run(sessions_of("bob"))) == len(backends)
    figures[f"revoke_user, registry on {registry_backend}: ended / other users' touched"] = (
        f"{ended}/{len(backends)} / 0"
    )


def on_server(site: Site, device: Device, backend: str) -> str | None:
    """The storage key of a device's server-side session (None for a cookie session)."""
    chosen = site.runtime.backend(backend)
    if not isinstance(chosen, ServerBackend):
        return None
    cookie = device.cookie(f"s-{backend}")
    assert cookie is not None
    session_id, _ = site.runtime.keyring.unsign(f"s-{backend}", cookie, None)
    return chosen.storage_key(session_id.decode())


@pytest.mark.parametrize("registry_backend", ["file", "redis", "datastore"])
def test_another_process_ends_cookie_sessions_within_check_interval(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    first, second = Site(settings), Site(settings)
    devices = {backend: Device(first) for backend in EVERY_SHARED_BACKEND}
    for backend, device in devices.items():
        device.run(sign_in("ada", backend))
        # Both processes have read the registry and trust that read for a while.
        assert device.run(whoami(backend), site=second) == "ada"

    assert tipsessions.revoke_user(first.app_config, "ada") == len(devices)

    for site in (first, second):
        now = {b: d.run(whoami(b), site=site) for b, d in devices.items()}
        # Server-side sessions are gone at once; a cookie session is refused
        # as soon as a process reads the registry again.
        assert {b for b, user in now.items() if user} <= {"securecookie", "encryptedcookie"}
    clock.shift(CHECK_INTERVAL)
    for site in (first, second):
        assert {b: d.run(whoami(b), site=site) for b, d in devices.items()} == dict.fromkeys(
            devices
        )


@pytest.mark.parametrize("registry_backend", ["memory", "redis"])
def test_keep_current_signs_out_every_other_device(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    sites = (
        [Site(settings)]
        if settings["users"]["backend"] == "memory"
        else [
            Site(settings),
            Site(settings),
        ]
    )
    backends = ["securecookie", "redis", "file"]
    here = {backend: Device(sites[0]) for backend in backends}
    others = {backend: Device(sites[0]) for backend in backends}
    for backend in backends:
        here[backend].run(sign_in("ada", backend))
        others[backend].run(sign_in("ada", backend))

    def sign_out_others(handler: Any) -> int:
        on(handler, "redis")  # this request's session, the one to keep
        return int(handler.session_store.revoke_user("ada", keep_current=True))

    assert here["redis"].run(sign_out_others) == 2 * len(backends) - 1
    clock.shift(CHECK_INTERVAL)
    for site in sites:
        assert here["redis"].run(whoami("redis"), site=site) == "ada"
        assert here["redis"].run(lambda h: on(h, "redis").new, site=site) is False
        gone = {b: d.run(whoami(b), site=site) for b, d in others.items()}
        assert gone == dict.fromkeys(backends)
    # "Current" means the sessions this request opened, and the default one.
    current = here["redis"].run(sessions_of("ada", "redis"))
    assert [(s.backend, s.current) for s in current] == [("redis", True)]


def test_a_kept_server_side_session_is_restamped_before_the_epoch_rises(
    servers_settings: dict[str, Any],
) -> None:
    """No other process can find it bound under the old epoch, even for an instant."""
    settings = {**servers_settings, "users": {"backend": "redis", "check_interval": 0}}
    site, other = Site(settings), Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "redis"))

    key = on_server(site, device, "redis")
    assert key is not None

    def revoke_and_look_from_elsewhere(handler: Any) -> bool:
        on(handler, "redis")
        handler.session_store.revoke_user("ada", keep_current=True)
        # Before this response is even sent, another process checks the session.
        record = other.runtime.backend("redis").read(key)[0]  # type: ignore[attr-defined]
        assert other.runtime.users is not None and record is not None and record.user
        return other.runtime.users.admits(record.user)

    assert device.run(revoke_and_look_from_elsewhere) is True
    assert device.run(whoami("redis"), site=other) == "ada"


@pytest.mark.parametrize("registry_backend", ["memory", "file"])
@pytest.mark.parametrize("backend", ["securecookie", "redis"])
def test_one_device_is_signed_out_and_the_others_stay(
    settings: dict[str, Any], backend: str
) -> None:
    site = Site(settings)
    laptop, phone = Device(site), Device(site)
    laptop.run(sign_in("ada", backend, label="laptop"))
    phone.run(sign_in("ada", backend, label="phone"))
    listed = laptop.run(sessions_of("ada", backend))
    (phone_session,) = [s for s in listed if s.label == "phone"]
    assert [s.current for s in listed if s.label == "laptop"] == [True]

    assert laptop.run(lambda h: h.session_store.revoke_session("ada", phone_session.fingerprint))

    assert phone.run(whoami(backend)) is None
    assert laptop.run(whoami(backend)) == "ada"
    assert [s.label for s in laptop.run(sessions_of("ada"))] == ["laptop"]
    revoke_again = laptop.run(
        lambda h: h.session_store.revoke_session("ada", phone_session.fingerprint)
    )
    assert revoke_again is False
    assert laptop.run(lambda h: h.session_store.revoke_session("ada", "not a fingerprint")) is False


def test_user_sessions_lists_exactly_the_live_ones(
    servers_settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    settings = {
        **servers_settings,
        "session_max_age": 3600,
        "users": {"backend": "file", "check_interval": CHECK_INTERVAL},
    }
    site = Site(settings)
    kept, signed_out, idle = Device(site), Device(site), Device(site)
    kept.run(sign_in("ada", "encryptedcookie", label="kept"))
    signed_out.run(sign_in("ada", "redis", label="signed out"))
    idle.run(sign_in("ada", "datastore", label="idle"))
    assert {s.label for s in kept.run(sessions_of("ada"))} == {"kept", "signed out", "idle"}

    signed_out.run(lambda h: on(h, "redis").invalidate())
    assert {s.label for s in kept.run(sessions_of("ada"))} == {"kept", "idle"}

    # Idle for longer than session_max_age, plus the slack of a late report.
    for _ in range(4):
        clock.shift(1000)
        kept.run(whoami("encryptedcookie"))
    listed = kept.run(sessions_of("ada", "encryptedcookie"))
    assert [(s.label, s.current, s.backend, s.name) for s in listed] == [
        ("kept", True, "encryptedcookie", "s-encryptedcookie")
    ]
    assert listed[0].last_seen > listed[0].created + 2900
    assert idle.run(whoami("datastore")) is None


def test_signing_out_ends_copies_of_a_cookie_session(servers_settings: dict[str, Any]) -> None:
    settings = {**servers_settings, "users": {"backend": "redis"}}
    site = Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "securecookie"))
    copied = device.cookie("s-securecookie")
    assert copied is not None

    thief = Device(site)
    thief.run(lambda h: None)
    thief.send_cookie("s-securecookie", copied)
    assert thief.run(whoami("securecookie")) == "ada"

    device.run(lambda h: on(h, "securecookie").invalidate())

    thief.send_cookie("s-securecookie", copied)
    assert thief.run(whoami("securecookie")) is None


@pytest.mark.parametrize("registry_backend", ["redis"])
def test_a_regenerated_session_stays_listed_and_revocable(settings: dict[str, Any]) -> None:
    site = Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "file"))
    before = on_server(site, device, "file")
    device.run(lambda h: on(h, "file").regenerate_id())
    after = on_server(site, device, "file")
    assert after != before

    assert tipsessions.revoke_user(site.app_config, "ada") == 1

    assert site.runtime.backend("file").read(after)[0] is None  # type: ignore[attr-defined]
    assert device.run(whoami("file")) is None


@pytest.mark.parametrize("registry_backend", ["memory"])
def test_signing_in_as_someone_else_moves_the_session(settings: dict[str, Any]) -> None:
    site = Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "redis"))
    device.run(sign_in("bob", "redis"))
    assert device.run(sessions_of("ada")) == []
    assert len(device.run(sessions_of("bob"))) == 1

    device.run(lambda h: on(h, "redis").set_user(None))
    assert device.run(sessions_of("bob")) == []
    assert device.run(lambda h: on(h, "redis").user_id) is None
    assert device.run(lambda h: h.session_store.revoke_user("bob")) == 0
    assert device.run(whoami("redis")) == "bob", "an unbound session is no one's to revoke"


@pytest.mark.parametrize("registry_backend", ["redis", "file"])
def test_a_sign_in_racing_a_revocation_is_revoked(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    """The revocation lands between set_user() and the save that registers the session."""
    site = Site(settings)
    device = Device(site)

    def sign_in_while_revoked(handler: Any) -> None:
        sign_in("ada", "securecookie")(handler)
        tipsessions.revoke_user(site.app_config, "ada")

    device.run(sign_in_while_revoked)
    clock.shift(CHECK_INTERVAL)
    assert device.run(whoami("securecookie")) is None


@pytest.mark.parametrize("registry_backend", ["redis"])
def test_a_regenerate_racing_a_sign_out_cannot_bring_the_session_back(
    settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    site, admin = Site(settings), Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "redis"))
    (listed,) = device.run(sessions_of("ada"))

    def regenerate_while_signed_out(handler: Any) -> None:
        on(handler, "redis").regenerate_id()
        assert tipsessions.admin.revoke_session(admin.app_config, "ada", listed.fingerprint)

    device.run(regenerate_while_signed_out)
    moved_to = on_server(site, device, "redis")
    clock.shift(CHECK_INTERVAL)
    assert device.run(whoami("redis")) is None
    assert site.runtime.backend("redis").read(moved_to)[0] is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["securecookie", "redis"])
def test_unbound_sessions_never_reach_the_registry(
    servers_settings: dict[str, Any], backend: str
) -> None:
    settings = {**servers_settings, "users": {"backend": "file"}}
    site = Site(settings)
    calls = CallCounter(site.runtime.users.backend)  # type: ignore[union-attr]
    device = Device(site)
    for value in range(3):
        device.run(lambda h, v=value: on(h, backend).__setitem__("v", v))
        device.run(whoami(backend))
    assert sum(calls.values()) == 0
    payload = stored_payload(site, device, backend)
    assert "u" not in payload and '"u"' not in str(payload)


def stored_payload(site: Site, device: Device, backend: str) -> dict[str, Any]:
    """What a session stores: its cookie's payload, or its server-side record."""
    chosen = site.runtime.backend(backend)
    cookie = device.cookie(f"s-{backend}")
    assert cookie is not None
    if isinstance(chosen, ServerBackend):
        key = on_server(site, device, backend)
        assert key is not None
        record = chosen.read(key)[0]
        assert record is not None
        return {"d": record.data, "u": record.user} if record.user else {"d": record.data}
    payload, _, _ = chosen.open(f"s-{backend}", cookie)  # type: ignore[attr-defined]
    return dict(tipsessions.record.decode_json(payload))


def test_a_bound_cookie_session_checks_the_registry_once_per_interval(
    servers_settings: dict[str, Any], clock: time_machine.Traveller
) -> None:
    settings = {**servers_settings, "users": {"backend": "redis", "check_interval": 10}}
    site = Site(settings)
    device = Device(site)
    device.run(sign_in("ada", "securecookie"))
    calls = CallCounter(site.runtime.users.backend)  # type: ignore[union-attr]
    for _ in range(20):
        device.run(whoami("securecookie"))
    reads_within = calls["read"]
    clock.shift(10)
    device.run(whoami("securecookie"))
    assert reads_within <= 1
    assert calls["read"] == reads_within + 1


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_every_backend_keeps_a_binding_through_merges_and_regeneration(
    servers_settings: dict[str, Any], backend: str
) -> None:
    device = Device(Site({**servers_settings, "users": {"backend": "file"}}))
    device.run(lambda h: on(h, backend).set_user("ada"))
    assert device.run(lambda h: (on(h, backend).new, on(h, backend).user_id)) == (False, "ada")
    device.run(lambda h: on(h, backend).__setitem__("cart", [1]))
    device.run(lambda h: on(h, backend).regenerate_id())
    device.run(lambda h: on(h, backend).pop("cart"))
    assert device.run(lambda h: (on(h, backend).new, on(h, backend).user_id)) == (False, "ada")
    device.run(lambda h: on(h, backend).set_user(None))
    assert device.run(lambda h: (on(h, backend).new, on(h, backend).user_id)) == (True, None)


def test_set_user_needs_the_users_setting() -> None:
    device = Device(Site({}))
    error = device.run(lambda h: capture(lambda: h.session.set_user("ada")))
    assert isinstance(error, ConfigError) and error.key == "tipsessions.users"
    error = device.run(lambda h: capture(lambda: h.session.set_user(None)))
    assert isinstance(error, ConfigError) and error.key == "tipsessions.users"
    error = device.run(lambda h: capture(lambda: h.session_store.revoke_user("ada")))
    assert isinstance(error, ConfigError) and error.key == "tipsessions.users"
    with pytest.raises(ConfigError, match=r"tipsessions\.users"):
        tipsessions.revoke_user({"tipsessions": {"secret_key": SECRET}}, "ada")


def capture(action: Callable[[], Any]) -> BaseException | None:
    try:
        action()
    except BaseException as error:
        return error
    return None


@pytest.mark.parametrize(
    ("user_id", "error"),
    [("", ValueError), (42, TypeError), ("x" * 257, ValueError), ("a\nb", ValueError)],
)
def test_set_user_takes_a_non_empty_string(user_id: Any, error: type[Exception]) -> None:
    device = Device(Site({"users": {"backend": "memory"}}))
    assert isinstance(device.run(lambda h: capture(lambda: h.session.set_user(user_id))), error)


@pytest.mark.parametrize(
    ("users", "key", "reason"),
    [
        ({"backend": "memcache"}, "tipsessions.users.backend", "evicted revocation epoch"),
        ({"backend": "securecookie"}, "tipsessions.users.backend", "keeps nothing"),
        ({"backend": "encryptedcookie"}, "tipsessions.users.backend", "keeps nothing"),
        ({"backend": "nowhere"}, "tipsessions.users.backend", "not a configured backend"),
        ({}, "tipsessions.users.backend", "not a configured backend"),
        (
            {"backend": "redis", "check_interval": -1},
            "tipsessions.users.check_interval",
            "whole number",
        ),
        (
            {"backend": "redis", "check_interval": 1.5},
            "tipsessions.users.check_interval",
            "whole number",
        ),
        ({"backend": "redis", "interval": 5}, "tipsessions.users.interval", "unknown"),
        ("redis", "tipsessions.users", "dict"),
    ],
)
def test_the_users_setting_is_checked(users: Any, key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as raised:
        tipsessions.config.load_settings({"tipsessions": {"secret_key": SECRET, "users": users}})
    assert raised.value.key == key


def test_a_backend_that_evicts_cannot_hold_the_registry(memcached_servers: list[str]) -> None:
    settings = {
        "backends": {"cache": "tipsessions.backends.memcache:MemcacheBackend"},
        "cache": {
            "servers": memcached_servers,
            "prefix": "x:",
            "connect_timeout": 1.0,
            "timeout": 1.0,
        },
        "users": {"backend": "cache"},
    }
    with pytest.raises(ConfigError, match="evict") as raised:
        Runtime(
            tipsessions.config.load_settings({"tipsessions": {"secret_key": SECRET, **settings}})
        )
    assert raised.value.key == "tipsessions.users.backend"


def test_check_interval_defaults_to_five_seconds() -> None:
    settings = tipsessions.config.load_settings(
        {"tipsessions": {"secret_key": SECRET, "users": {"backend": "file"}}}
    )
    assert settings.users is not None and settings.users.check_interval == 5


def registry_outage(server: ServerProcess, policy: str) -> Site:
    options = {"url": redis_url(server.address), "connect_timeout": 1.0, "socket_timeout": 1.0}
    return Site(
        {
            "backends": {"registry": "tipsessions.backends.redis:RedisBackend"},
            "registry": {
                **options,
                "prefix": "r:",
                "cluster": False,
                "startup_nodes": [],
                "sentinels": None,
                "service_name": None,
            },
            "users": {"backend": "registry", "check_interval": CHECK_INTERVAL},
            "on_backend_error": policy,
        }
    )


def test_a_registry_outage_raises_for_bound_sessions_only(
    killable_redis: ServerProcess, clock: time_machine.Traveller
) -> None:
    site = registry_outage(killable_redis, "raise")
    bound, unbound = Device(site), Device(site)
    bound.run(sign_in("ada", "securecookie"))
    unbound.run(lambda h: on(h, "securecookie").__setitem__("user", "guest"))
    killable_redis.kill()

    # Within check_interval this process still trusts its last read.
    assert bound.run(whoami("securecookie")) == "ada"
    clock.shift(CHECK_INTERVAL)
    error = bound.run(lambda h: capture(lambda: whoami("securecookie")(h)))
    assert isinstance(error, BackendUnavailable) and error.backend == "registry"
    assert unbound.run(whoami("securecookie")) == "guest"
    signing_in = Device(site).run(lambda h: capture(lambda: sign_in("bob", "securecookie")(h)))
    assert isinstance(signing_in, BackendUnavailable)
    for action in (
        lambda h: h.session_store.revoke_user("ada"),
        lambda h: h.session_store.user_sessions("ada"),
    ):
        assert isinstance(
            unbound.run(lambda h, a=action: capture(lambda: a(h))), BackendUnavailable
        )


def test_a_registry_outage_degrades_to_an_empty_session_never_past_a_revocation(
    killable_redis: ServerProcess,
    clock: time_machine.Traveller,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = registry_outage(killable_redis, "degrade")
    device = Device(site)
    device.run(sign_in("ada", "securecookie"))
    # Recorded by another process; this one has not read it yet.
    assert tipsessions.revoke_user(site.app_config, "ada") == 1
    killable_redis.kill()
    clock.shift(CHECK_INTERVAL)

    with caplog.at_level(logging.ERROR, logger="tipsessions"):
        seen = device.run(
            lambda h: (
                whoami("securecookie")(h),
                dict(on(h, "securecookie")),
                on(h, "securecookie").degraded,
            )
        )
    assert seen == (None, {}, True)
    assert "registry" in caplog.text
    signing_in = Device(site)
    assert signing_in.run(
        lambda h: (sign_in("bob", "securecookie")(h), on(h, "securecookie").degraded)
    )[1]
    assert signing_in.cookie("s-securecookie") is None, (
        "a sign-in that cannot register is not saved"
    )

    killable_redis.start()
    assert device.run(whoami("securecookie")) is None


def test_a_malformed_registry_record_signs_its_user_out(
    servers_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**servers_settings, "users": {"backend": "redis", "check_interval": 0}}
    site = Site(settings)
    ada, bob = Device(site), Device(site)
    ada.run(sign_in("ada", "securecookie"))
    bob.run(sign_in("bob", "securecookie"))
    registry = site.runtime.users
    assert registry is not None
    registry.backend.put(registry.key("ada"), Record(data={"e": "soon"}, created=1), 60)

    with caplog.at_level(logging.WARNING, logger="tipsessions.security"):
        assert ada.run(whoami("securecookie")) is None
    assert "unusable user registry record" in caplog.text
    assert bob.run(whoami("securecookie")) == "bob"


def test_a_malformed_entry_signs_out_that_session_only(servers_settings: dict[str, Any]) -> None:
    settings = {**servers_settings, "users": {"backend": "file", "check_interval": 0}}
    site = Site(settings)
    broken, intact = Device(site), Device(site)
    broken.run(sign_in("ada", "securecookie"))
    intact.run(sign_in("ada", "securecookie"))
    (mine,) = [s.fingerprint for s in broken.run(sessions_of("ada", "securecookie")) if s.current]
    registry = site.runtime.users
    assert registry is not None
    record = registry.backend.read(registry.key("ada"))[0]
    assert record is not None
    record.data[f"s:{mine}"] = {"n": 5}
    registry.backend.put(registry.key("ada"), record, 60)

    assert broken.run(whoami("securecookie")) is None
    assert intact.run(whoami("securecookie")) == "ada"
    assert len(intact.run(sessions_of("ada"))) == 1


def test_a_binding_a_client_made_up_reads_as_a_new_session(
    servers_settings: dict[str, Any],
) -> None:
    """A binding travels inside the signed cookie: only the application can write one."""
    site = Site({**servers_settings, "users": {"backend": "memory"}})
    device = Device(site)
    device.run(sign_in("ada", "securecookie"))
    (fingerprint,) = [s.fingerprint for s in device.run(sessions_of("ada"))]
    payload = f'{{"d":{{"user":"ada"}},"c":1,"u":["ada",9999999999999,"{fingerprint}"]}}'
    other_secret = Keyring(["another application's secret, 32 bytes"])
    malformed = payload.replace(f',"{fingerprint}"', "")
    for value in (
        other_secret.sign("s-securecookie", payload.encode()),
        site.runtime.keyring.sign("s-securecookie", malformed.encode()),
    ):
        device.send_cookie("s-securecookie", value)
        assert device.run(lambda h: (on(h, "securecookie").new, on(h, "securecookie").user_id)) == (
            True,
            None,
        )


def test_outside_a_request_list_and_revoke(servers_settings: dict[str, Any]) -> None:
    site = Site({**servers_settings, "users": {"backend": "datastore"}})
    devices = [Device(site) for _ in range(3)]
    for device, backend in zip(devices, ["securecookie", "memcache", "datastore"], strict=True):
        device.run(sign_in("ada", backend, label=backend))
    listed = tipsessions.user_sessions(site.app_config, "ada")
    assert sorted(s.label or "" for s in listed) == ["datastore", "memcache", "securecookie"]
    assert not any(s.current for s in listed)
    memcache = next(s for s in listed if s.backend == "memcache")

    assert tipsessions.admin.revoke_session(site.app_config, "ada", memcache.fingerprint)
    assert devices[1].run(whoami("memcache")) is None
    assert tipsessions.revoke_user(site.app_config, "ada") == 2
    assert tipsessions.user_sessions(site.app_config, "ada") == []


def test_the_command_line_lists_and_revokes(tmp_path: Path) -> None:
    settings = {
        "file": {"path": str(tmp_path / "sessions")},
        # This process reads the registry on every request: no wait for a cache.
        "users": {"backend": "file", "check_interval": 0},
    }
    config_file = tmp_path / "app_config.py"
    config_file.write_text(
        f"config = {{'tipsessions': {{'secret_key': {SECRET!r}, **{settings!r}}}}}\n"
    )
    site = Site(settings)
    phone, laptop = Device(site), Device(site)
    phone.run(sign_in("ada", "file", label="phone"))
    laptop.run(sign_in("ada", "securecookie", label="laptop"))

    listed = run("sessions", "--user", "ada", "--config", str(config_file))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[-1] == "2 live sessions of user 'ada'"
    (phone_line,) = [line for line in lines if line.endswith("phone")]
    assert "s-file (file)" in phone_line
    fingerprint = phone_line.split()[0]

    one = run("revoke", "--user", "ada", "--session", fingerprint, "--config", str(config_file))
    assert (one.returncode, one.stdout) == (0, f"revoked session {fingerprint} of user 'ada'\n")
    assert phone.run(whoami("file")) is None
    again = run("revoke", "--user", "ada", "--session", fingerprint, "--config", str(config_file))
    assert again.returncode == 1
    everything = run("revoke", "--user", "ada", "--config", str(config_file))
    assert (everything.returncode, everything.stdout) == (
        0,
        "revoked 1 live session of user 'ada'\n",
    )
    assert laptop.run(whoami("securecookie")) is None


def test_the_command_line_says_what_is_missing(tmp_path: Path) -> None:
    config_file = tmp_path / "app_config.py"
    config_file.write_text(f"config = {{'tipsessions': {{'secret_key': {SECRET!r}}}}}\n")
    done = run("revoke", "--user", "ada", "--config", str(config_file))
    assert done.returncode == 2 and "tipsessions.users" in done.stderr
    empty = run("revoke", "--user", "", "--config", str(config_file))
    assert empty.returncode == 2 and "user id" in empty.stderr
    no_user = run("revoke", "--config", str(config_file))
    assert no_user.returncode == 2 and "--user" in no_user.stderr
