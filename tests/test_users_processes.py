"""Signing out everywhere across two real app server processes.

Two waitress processes serve one app, the user registry on Redis. A user
signs in on five devices (five cookie jars) spread over securecookie,
encryptedcookie, redis, memcache, datastore and file sessions, each request
alternating between the processes as behind a load balancer; another user
does the same. Both processes have read the registry when the first user is
signed out. What must hold, and is printed at the end of the run:

* server-side sessions end at once, on both processes;
* cookie sessions end on both processes once ``check_interval`` has passed
  (each process's clock is moved forward rather than waited for);
* 100 % of the user's sessions end, and 0 of the other user's;
* with ``keep_current`` the caller's session survives and all others end;
* ``user_sessions`` lists exactly the live sessions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tipsessions
from tests.apps import SECRET
from tests.multiprocess import AppPair, Reply, Visitor, app_pair

CHECK_INTERVAL = 5
#: Five devices; the last keeps two sessions, so that all six backends are covered.
DEVICES = [
    ["securecookie"],
    ["encryptedcookie"],
    ["redis"],
    ["memcache"],
    ["datastore", "file"],
]
COOKIE_BACKENDS = {"securecookie", "encryptedcookie"}


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory,
    memcached_servers: list[str],
    redis_url: str,
    datastore_emulator: str,
) -> dict[str, Any]:
    prefix = f"t-{secrets.token_hex(6)}:"
    return {
        "secret_key": SECRET,
        "file": {"path": str(tmp_path_factory.mktemp("user-sessions"))},
        "memcache": {"servers": memcached_servers, "prefix": prefix},
        "redis": {"url": redis_url, "prefix": prefix},
        "datastore": {"namespace": prefix.rstrip(":")},
        "users": {"backend": "redis", "check_interval": CHECK_INTERVAL},
    }


@pytest.fixture(scope="module")
def pair(server_log_dir: Path, settings: dict[str, Any]) -> Iterator[AppPair]:
    with app_pair(server_log_dir, settings) as running:
        yield running


def on(visitor: Visitor, process: int, path: str) -> Reply:
    """A request of ``visitor`` sent to one process in particular."""
    visitor.turn = process
    reply = visitor.get(path)
    assert reply.status == 200, reply.body
    return reply


def signed_in(visitor: Visitor, process: int, backend: str) -> str | None:
    return on(visitor, process, f"/{backend}/read").json()["data"].get("user")


def shift_clocks(pair: AppPair, seconds: int) -> None:
    nobody = Visitor(pair)
    for process in (0, 1):
        on(nobody, process, f"/clock/{seconds}")


def sign_in_everywhere(pair: AppPair, user: str) -> list[Visitor]:
    devices = []
    for number, backends in enumerate(DEVICES):
        device = Visitor(pair, turn=number)
        for backend in backends:
            device.get(f"/{backend}/signin/{user}")
            # Each process reads the session, and the registry, once.
            assert signed_in(device, 0, backend) == user
            assert signed_in(device, 1, backend) == user
        devices.append(device)
    return devices


def sessions(devices: list[Visitor]) -> Iterator[tuple[Visitor, str]]:
    for device, backends in zip(devices, DEVICES, strict=True):
        for backend in backends:
            yield device, backend


def still_signed_in(devices: list[Visitor], process: int) -> set[str]:
    return {b for d, b in sessions(devices) if signed_in(d, process, b) is not None}


def test_a_user_is_signed_out_on_every_device_and_both_processes(
    pair: AppPair, settings: dict[str, Any], figures: dict[str, Any]
) -> None:
    ada = sign_in_everywhere(pair, "ada")
    bob = sign_in_everywhere(pair, "bob")
    every = {b for _, b in sessions(ada)}
    app_config = {"tipsessions": settings}
    assert len(tipsessions.user_sessions(app_config, "ada")) == len(every)

    ended = tipsessions.revoke_user(app_config, "ada")

    at_once = [still_signed_in(ada, process) for process in (0, 1)]
    for survivors in at_once:
        assert survivors <= COOKIE_BACKENDS, "server-side sessions end at once"
    shift_clocks(pair, CHECK_INTERVAL)
    after = [still_signed_in(ada, process) for process in (0, 1)]
    assert after == [set(), set()]
    assert ended == len(every)
    untouched = [still_signed_in(bob, process) for process in (0, 1)]
    assert untouched == [every, every]
    assert tipsessions.user_sessions(app_config, "ada") == []
    assert len(tipsessions.user_sessions(app_config, "bob")) == len(every)

    figures["two processes: ada's sessions ended by revoke_user"] = (
        f"{ended}/{len(every)} (100 %) on both processes"
    )
    figures["two processes: server-side sessions ended at once"] = (
        f"{len(every - COOKIE_BACKENDS)}/{len(every - COOKIE_BACKENDS)} on both processes"
    )
    figures["two processes: cookie sessions still admitted right after, by a process's cache"] = (
        f"{len(at_once[0])} and {len(at_once[1])} of {len(COOKIE_BACKENDS)}; "
        f"0 after check_interval ({CHECK_INTERVAL} s)"
    )
    figures["two processes: bob's sessions touched"] = f"0 of {len(every)}"


def test_keep_current_keeps_the_callers_session_on_both_processes(pair: AppPair) -> None:
    carol = sign_in_everywhere(pair, "carol")
    every = {b for _, b in sessions(carol)}
    caller = carol[0]

    ended = on(caller, 1, "/securecookie/revoke?keep=1").json()["ended"]

    shift_clocks(pair, CHECK_INTERVAL)
    assert ended == len(every) - 1
    for process in (0, 1):
        assert still_signed_in(carol, process) == {"securecookie"}
    listed = on(caller, 0, "/users/carol").json()
    assert [(s["backend"], s["name"]) for s in listed] == [("securecookie", "s-securecookie")]
