"""Shared fixtures: real servers, and the backend parameter of the contract suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.server_fixtures", "tests.fault_figures"]

COOKIE_BACKENDS = ["securecookie", "encryptedcookie"]
SERVER_BACKENDS = ["memory", "file", "memcache", "redis", "datastore"]
ALL_BACKENDS = COOKIE_BACKENDS + SERVER_BACKENDS


def backend_settings(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings that put the default session on backend ``name``, isolated per test.

    Server fixtures are requested only for the backend that needs them, so a
    run of the cookie backends starts no server.
    """
    settings: dict[str, Any] = {"default_backend": name}
    if name == "file":
        settings["file"] = {"path": str(tmp_path / "sessions")}
    elif name == "memcache":
        settings["memcache"] = {
            "servers": request.getfixturevalue("memcached_servers"),
            "prefix": request.getfixturevalue("unique_prefix"),
        }
    elif name == "redis":
        settings["redis"] = {
            "url": request.getfixturevalue("redis_url"),
            "prefix": request.getfixturevalue("unique_prefix"),
        }
    elif name == "datastore":
        request.getfixturevalue("datastore_emulator")
        settings["datastore"] = {"namespace": request.getfixturevalue("unique_namespace")}
    return settings


@pytest.fixture(params=ALL_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return backend_settings(backend_name, request, tmp_path)
