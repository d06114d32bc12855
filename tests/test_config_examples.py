"""Every example in config/ loads, validates and serves real sessions.

An example configuration that no test runs rots silently: a renamed key, a
backend option that moved. Here each module is executed afresh under the
environment a deployment would give it, the sample app is built with its
``config``, and a visitor makes requests that write and read a session on
the module's default backend (memcached, Redis and the Datastore emulator
are real servers, started by the shared fixtures).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import webtest

from sample_app import create_app
from tipsessions import ConfigError
from tipsessions.config import load_settings

HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "shop.example"}


def load_example(name: str) -> ModuleType:
    """Execute ``config/<name>.py`` now, under the current environment.

    A fresh module object each time (never the cached import), so one test's
    environment variables cannot leak into another's configuration.
    """
    spec = importlib.util.find_spec(f"config.{name}")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_app(example: ModuleType, cart_backend: str, **environ: str) -> webtest.TestApp:
    config: dict[str, Any] = copy.deepcopy(example.config)
    config["sample_app"] = {"cart_backend": cart_backend}
    return webtest.TestApp(create_app(config), extra_environ=environ)


def visits(client: webtest.TestApp) -> int:
    return int(client.get("/").html.select_one("#visits").get_text())


def add_tea(client: webtest.TestApp) -> None:
    page = client.get("/cart")
    form = next(
        f for f in page.forms.values() if f.action == "/cart/add" and f["product"].value == "tea"
    )
    form.submit().follow()


def assert_sessions_work(client: webtest.TestApp) -> None:
    """The default session counts visits; the cart keeps an item."""
    assert visits(client) == 1
    assert visits(client) == 2
    add_tea(client)
    assert "Green tea" in client.get("/cart").html.select_one("#cart").get_text()


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths (the file backend's default) land in a throwaway folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIPSESSIONS_SECRET_KEY", raising=False)


def test_development_runs_with_nothing_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example("development")
    example.config["tipsessions"]["file"]["path"] = str(tmp_path / "sessions")

    assert load_settings(example.config).default_backend == "securecookie"
    assert_sessions_work(sample_app(example, "file"))
    assert list((tmp_path / "sessions").iterdir()), "the cart was written as a file"


def test_memcache(memcached_servers: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_MEMCACHE_SERVERS", ",".join(memcached_servers))
    example = load_example("memcache")

    settings = load_settings(example.config)
    assert settings.default_backend == "memcache"
    assert settings.backend_options["memcache"]["servers"] == memcached_servers
    assert_sessions_work(sample_app(example, "memcache"))


def test_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_REDIS_URL", redis_url)
    example = load_example("redis")

    settings = load_settings(example.config)
    assert settings.default_backend == "redis"
    assert settings.backend_options["redis"]["url"] == redis_url
    assert_sessions_work(sample_app(example, "redis"))


def test_datastore(datastore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_DATASTORE_PROJECT", "tipsessions-example")
    example = load_example("datastore")

    settings = load_settings(example.config)
    assert settings.default_backend == "datastore"
    assert settings.backend_options["datastore"]["project"] == "tipsessions-example"
    assert_sessions_work(sample_app(example, "datastore"))


def test_server_examples_fall_back_to_the_standard_local_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in (
        "TIPSESSIONS_MEMCACHE_SERVERS",
        "TIPSESSIONS_REDIS_URL",
        "TIPSESSIONS_DATASTORE_PROJECT",
    ):
        monkeypatch.delenv(variable, raising=False)

    memcache = load_settings(load_example("memcache").config).backend_options["memcache"]
    redis = load_settings(load_example("redis").config).backend_options["redis"]
    datastore = load_settings(load_example("datastore").config).backend_options["datastore"]

    assert memcache["servers"] == ["127.0.0.1:11211"]
    assert redis["url"] == "redis://127.0.0.1:6379/0"
    assert datastore["project"] is None


NEW_SECRET = "new-production-secret-4f9c2a7e81d3"
OLD_SECRET = "old-production-secret-0b6d5e3c92a1"


def test_production_refuses_to_load_without_its_secret() -> None:
    with pytest.raises(ConfigError, match="TIPSESSIONS_SECRET_KEY") as raised:
        load_example("production")
    assert raised.value.key == "TIPSESSIONS_SECRET_KEY"


def test_production_refuses_an_empty_secret_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_SECRET_KEY", " , ")
    with pytest.raises(ConfigError, match="TIPSESSIONS_SECRET_KEY"):
        load_example("production")


def test_production_sets_hardened_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_SECRET_KEY", f"{NEW_SECRET}, {OLD_SECRET}")
    example = load_example("production")

    settings = load_settings(example.config)
    assert settings.secret_keys == (NEW_SECRET, OLD_SECRET)
    assert settings.session_absolute_max_age is not None
    assert settings.cookie_args["secure"] is True

    client = sample_app(example, "memory", **HTTPS)
    response = client.get("/")
    (cookie,) = response.headers.getall("Set-Cookie")
    name_value, *attributes = (part.strip().lower() for part in cookie.split(";"))
    assert name_value.startswith("__host-session=")
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(attributes)
    assert not any(attribute.startswith("domain") for attribute in attributes)
    assert_sessions_work(sample_app(example, "memory", **HTTPS))


def test_production_rotates_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPSESSIONS_SECRET_KEY", OLD_SECRET)
    client = sample_app(load_example("production"), "memory", **HTTPS)
    assert visits(client) == 1
    cookie = client.cookies["__Host-session"]

    # New key first, old one kept: the old cookie still reads.
    monkeypatch.setenv("TIPSESSIONS_SECRET_KEY", f"{NEW_SECRET},{OLD_SECRET}")
    rotated = sample_app(load_example("production"), "memory", **HTTPS)
    rotated.set_cookie("__Host-session", cookie)
    assert visits(rotated) == 2

    # Old key dropped: the old cookie no longer verifies.
    monkeypatch.setenv("TIPSESSIONS_SECRET_KEY", NEW_SECRET)
    retired = sample_app(load_example("production"), "memory", **HTTPS)
    retired.set_cookie("__Host-session", cookie)
    assert visits(retired) == 1
