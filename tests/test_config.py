"""Configuration: defaults merged with the app's settings, and loud failures.

Every bad setting raises ``ConfigError`` naming the offending key, when the
first store of the application is built; a request that never touches a
session builds nothing and so cannot fail on configuration.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
import webapp2

import tipsessions
from tests.apps import SECRET, Browser
from tipsessions import ConfigError, SessionStore
from tipsessions.runtime import Runtime


def app_with(settings: dict[str, Any] | None) -> webapp2.WSGIApplication:
    config = {} if settings is None else {"tipsessions": settings}
    return webapp2.WSGIApplication([], config=config)


def build_store(settings: dict[str, Any] | None) -> SessionStore:
    """Build the first store of a fresh app, as the first request using sessions does."""
    request = webapp2.Request.blank("/")
    request.app = app_with(settings)
    return SessionStore(request)


def config_error(settings: dict[str, Any] | None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        build_store(settings)
    return caught.value


def test_keys_left_out_take_their_defaults() -> None:
    settings = build_store({"secret_key": SECRET}).settings
    assert settings.default_backend == "securecookie"
    assert settings.cookie_name == "session"
    assert settings.session_max_age is None
    assert settings.session_absolute_max_age is None
    assert settings.regenerate_grace == 30
    assert settings.on_backend_error == "raise"
    assert dict(settings.cookie_args) == {
        "max_age": None,
        "domain": None,
        "path": "/",
        "secure": False,
        "httponly": True,
        "samesite": "Lax",
    }


def test_given_keys_override_the_defaults() -> None:
    settings = build_store(
        {"secret_key": SECRET, "cookie_name": "sid", "session_max_age": 600}
    ).settings
    assert (settings.cookie_name, settings.session_max_age) == ("sid", 600)


def test_nested_sections_are_merged_key_by_key() -> None:
    settings = build_store(
        {
            "secret_key": SECRET,
            "cookie_args": {"secure": True},
            "redis": {"prefix": "app:"},
        }
    ).settings
    assert settings.cookie_args["secure"] is True
    assert settings.cookie_args["samesite"] == "Lax"  # the rest keeps its defaults
    assert settings.cookie_args["httponly"] is True
    assert settings.backend_options["redis"]["prefix"] == "app:"
    assert settings.backend_options["redis"]["url"] == "redis://127.0.0.1:6379/0"


def test_the_apps_config_is_left_unchanged() -> None:
    given = {"secret_key": SECRET, "cookie_args": {"secure": True}, "memcache": {}}
    before = copy.deepcopy(given)
    build_store(given)
    assert given == before


def test_a_secret_list_is_accepted() -> None:
    other = "another-secret-abcdefghijklmnop"
    assert build_store({"secret_key": [SECRET, other]}).settings.secret_keys == (SECRET, other)


def test_merged_settings_reach_requests() -> None:
    browser = Browser(cookie_name="sid", cookie_args={"secure": True})
    browser(lambda h: h.session.__setitem__("a", 1))
    (header,) = browser.set_cookies()
    assert header.startswith("sid=")
    assert "secure" in header.lower() and "SameSite=Lax" in header


BAD_SETTINGS = {
    "no tipsessions section": (None, "tipsessions.secret_key"),
    "missing secret": ({}, "tipsessions.secret_key"),
    "None secret": ({"secret_key": None}, "tipsessions.secret_key"),
    "empty secret": ({"secret_key": ""}, "tipsessions.secret_key"),
    "empty secret list": ({"secret_key": []}, "tipsessions.secret_key"),
    "short secret": ({"secret_key": "x" * 15}, "tipsessions.secret_key"),
    "short secret in a list": ({"secret_key": [SECRET, "short"]}, "tipsessions.secret_key"),
    "secret not a string": ({"secret_key": 12345678901234567890}, "tipsessions.secret_key"),
    "unknown key": ({"secret_key": SECRET, "cookie_nmae": "x"}, "tipsessions.cookie_nmae"),
    "unknown backend option": (
        {"secret_key": SECRET, "redis": {"ulr": "redis://h"}},
        "tipsessions.redis.ulr",
    ),
    "unknown cookie attribute": (
        {"secret_key": SECRET, "cookie_args": {"secrue": True}},
        "tipsessions.cookie_args.secrue",
    ),
    "unknown default backend": (
        {"secret_key": SECRET, "default_backend": "mongo"},
        "tipsessions.default_backend",
    ),
    "bad samesite": (
        {"secret_key": SECRET, "cookie_args": {"samesite": "lax-ish"}},
        "tipsessions.cookie_args.samesite",
    ),
    "SameSite=None without secure": (
        {"secret_key": SECRET, "cookie_args": {"samesite": "None"}},
        "tipsessions.cookie_args.samesite",
    ),
    "negative idle age": (
        {"secret_key": SECRET, "session_max_age": -1},
        "tipsessions.session_max_age",
    ),
    "negative absolute age": (
        {"secret_key": SECRET, "session_absolute_max_age": -60},
        "tipsessions.session_absolute_max_age",
    ),
    "negative cookie max age": (
        {"secret_key": SECRET, "cookie_args": {"max_age": -1}},
        "tipsessions.cookie_args.max_age",
    ),
    "age as text": (
        {"secret_key": SECRET, "session_max_age": "3600"},
        "tipsessions.session_max_age",
    ),
    "bad cookie name": (
        {"secret_key": SECRET, "cookie_name": "my session"},
        "tipsessions.cookie_name",
    ),
    "memcache server without port": (
        {"secret_key": SECRET, "memcache": {"servers": ["localhost"]}},
        "tipsessions.memcache.servers",
    ),
    "no memcache servers": (
        {"secret_key": SECRET, "memcache": {"servers": []}},
        "tipsessions.memcache.servers",
    ),
    "redis url of another scheme": (
        {"secret_key": SECRET, "redis": {"url": "http://127.0.0.1:6379"}},
        "tipsessions.redis.url",
    ),
    "empty redis url": (
        {"secret_key": SECRET, "redis": {"url": ""}},
        "tipsessions.redis.url",
    ),
    "filename template without %s": (
        {"secret_key": SECRET, "file": {"filename_template": "session.sess"}},
        "tipsessions.file.filename_template",
    ),
    "filename template with two %s": (
        {"secret_key": SECRET, "file": {"filename_template": "%s_%s.sess"}},
        "tipsessions.file.filename_template",
    ),
    "filename template with a folder": (
        {"secret_key": SECRET, "file": {"filename_template": "../%s.sess"}},
        "tipsessions.file.filename_template",
    ),
}


@pytest.mark.parametrize(("settings", "key"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_setting_raises_config_error_naming_the_key(
    settings: dict[str, Any] | None, key: str
) -> None:
    error = config_error(settings)
    assert error.key == key
    assert key in str(error)


def test_config_error_never_shows_the_secret() -> None:
    too_short = "tooshort-secret"
    assert too_short not in str(config_error({"secret_key": too_short}))


def test_the_secret_needs_16_bytes_not_16_characters() -> None:
    # 8 characters of two UTF-8 bytes each: enough bytes.
    assert build_store({"secret_key": "é" * 8}).settings.secret_keys == ("é" * 8,)


def test_unknown_backend_in_get_session_names_it() -> None:
    browser = Browser()

    def ask(h: Any) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            h.session_store.get_session("cart", backend="mongo")
        return caught.value

    error = browser(ask)
    assert error.key == "mongo"
    assert "'mongo'" in str(error)


def test_backend_whose_import_fails_names_the_backend_and_module() -> None:
    error = config_error(
        {
            "secret_key": SECRET,
            "backends": {"mongo": "no_such_module_for_tipsessions:MongoBackend"},
            "default_backend": "mongo",
        }
    )
    assert error.key == "tipsessions.backends.mongo"
    assert "no_such_module_for_tipsessions" in str(error)


def test_backend_that_is_not_a_backend_class_is_refused() -> None:
    error = config_error(
        {
            "secret_key": SECRET,
            "backends": {"odd": "collections:OrderedDict"},
            "default_backend": "odd",
        }
    )
    assert error.key == "tipsessions.backends.odd"


#: The class of each built-in backend that needs an extra.
BACKEND_CLASSES = {
    "memcache": "MemcacheBackend",
    "redis": "RedisBackend",
    "datastore": "DatastoreBackend",
}
#: The packages each built-in extra installs.
EXTRA_PACKAGES = {"memcache": ["pymemcache"], "redis": ["redis"], "datastore": ["google", "grpc"]}


@pytest.fixture(params=sorted(EXTRA_PACKAGES))
def uninstalled(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A built-in backend whose extra's packages cannot be imported."""
    backend = str(request.param)
    # None in sys.modules fails an import as a missing package does; every
    # submodule is blocked too, since one already imported would be reused.
    for package in EXTRA_PACKAGES[backend]:
        for name in [n for n in sys.modules if n.startswith(f"{package}.")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, package, None)
    # Dropped so that it is imported afresh.
    monkeypatch.delitem(sys.modules, f"tipsessions.backends.{backend}", raising=False)
    return backend


def test_builtin_backend_without_its_extra_says_what_to_install(uninstalled: str) -> None:
    error = config_error({"secret_key": SECRET, "default_backend": uninstalled})
    # The name the user wrote, never the module path behind it.
    assert error.key == uninstalled
    assert str(error).startswith(f"{uninstalled}: the {uninstalled} backend needs ")
    assert "tipsessions.backends" not in str(error)
    assert f"pip install '.[{uninstalled}]'" in str(error)


def test_own_name_for_a_builtin_without_its_extra_gets_the_hint(uninstalled: str) -> None:
    target = f"tipsessions.backends.{uninstalled}:{BACKEND_CLASSES[uninstalled]}"
    error = config_error(
        {"secret_key": SECRET, "backends": {"shared": target}, "default_backend": "shared"}
    )
    assert error.key == "tipsessions.backends.shared"
    assert "the shared backend needs " in str(error)
    assert f"pip install '.[{uninstalled}]'" in str(error)


def test_missing_extra_is_reported_by_get_session_too(uninstalled: str) -> None:
    browser = Browser()

    def ask(h: Any) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            h.session_store.get_session("side", backend=uninstalled)
        return caught.value

    assert f"pip install '.[{uninstalled}]'" in str(browser(ask))


def test_a_replaced_builtin_that_fails_to_import_gets_no_install_hint() -> None:
    # The hint is for the packaged backends only; a user's own path is theirs.
    error = config_error(
        {
            "secret_key": SECRET,
            "backends": {"redis": "my_missing_app.sessions:Redis"},
            "default_backend": "redis",
        }
    )
    assert "my_missing_app" in str(error)
    assert "pip install" not in str(error)


def test_bad_per_session_cookie_args_raise_config_error() -> None:
    browser = Browser()

    def ask(h: Any) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            h.session_store.get_session("side", cookie_args={"samesite": "sometimes"})
        return caught.value

    assert "samesite" in browser(ask).key


def test_bad_per_session_max_age_raises_config_error() -> None:
    browser = Browser()

    def ask(h: Any) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            h.session_store.get_session("side", max_age=-5)
        return caught.value

    assert "max_age" in browser(ask).key


def test_bad_config_fails_the_first_request_that_uses_a_session() -> None:
    browser = Browser(secret_key="short")
    error = browser.fail(lambda h: h.session)
    assert isinstance(error, ConfigError)
    assert error.key == "tipsessions.secret_key"


def test_bad_config_fails_get_store() -> None:
    browser = Browser(cookie_nmae="x")
    error = browser.fail(lambda h: tipsessions.get_store(h.request))
    assert isinstance(error, ConfigError)


def test_request_that_never_touches_sessions_builds_nothing() -> None:
    browser = Browser(secret_key="short")

    def plain(h: Any) -> list[object]:
        h.response.write("hello")
        return list(h.request.registry.values())

    assert browser(plain) == []  # no store in the request's registry
    assert not any(isinstance(v, Runtime) for v in browser.app.registry.values())
    assert browser.set_cookies() == []
    assert "Vary" not in browser.response.headers
    assert browser.response.text == "hello"


def test_settings_are_loaded_once_per_application() -> None:
    browser = Browser()
    runtimes = [browser(lambda h: h.session_store.runtime) for _ in range(3)]
    assert runtimes[0] is runtimes[1] is runtimes[2] is Runtime.of(browser.app)
