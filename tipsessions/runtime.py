"""What one application's requests share: settings, keys, backends.

Built once per application, on the first request that uses a session (or
once per configuration for stores built with ``config=``), and shared by
every thread after that. The command line builds one the same way, so it
reaches the sessions the application wrote.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import webapp2

from .backends.base import Backend, Lifetime
from .backends.catalog import import_backend
from .config import Settings, load_settings
from .cookies import Keyring
from .errors import ConfigError
from .legacy import LegacyCookies
from .registry import build_registry

_RUNTIME_KEY = "tipsessions.runtime"
_lock = threading.Lock()
#: Runtimes of stores built with ``config=``, by configuration, so that their
#: backends and connection pools are built once, not per store.
_by_config: dict[str, Runtime] = {}
_MAX_CONFIGS = 64


class Runtime:
    """An application's settings, keyring and backends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring = Keyring(settings.secret_keys)
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        #: Cookie names already checked, so each is validated once, not per request.
        self.checked_names: set[str] = set()
        self.default_lifetime = lifetime_of(
            settings, settings.session_max_age, settings.cookie_args
        )
        #: Reads the cookies of the libraries tipsessions replaces, when configured.
        self.legacy = (
            None if settings.legacy_cookies is None else LegacyCookies(settings.secret_keys)
        )
        # Build the default backend now, so a missing extra or a bad class
        # is reported when the first store is built, not mid-request.
        self.backend(settings.default_backend)
        #: The user registry behind ``set_user()``; ``None`` without ``users``.
        self.users = build_registry(settings, self.backend)

    @classmethod
    def of(cls, app: webapp2.WSGIApplication) -> Runtime:
        """The application's runtime, built from ``app.config`` on first use."""
        runtime: Runtime | None = app.registry.get(_RUNTIME_KEY)
        if runtime is None:
            with _lock:
                runtime = app.registry.get(_RUNTIME_KEY)
                if runtime is None:
                    runtime = app.registry[_RUNTIME_KEY] = cls(load_settings(app.config))
        return runtime

    @classmethod
    def for_config(cls, config: Mapping[str, Any]) -> Runtime:
        """The runtime of a ``config["tipsessions"]`` dict, one per distinct configuration."""
        key = json.dumps(config, sort_keys=True, default=repr)
        runtime = _by_config.get(key)
        if runtime is None:
            with _lock:
                runtime = _by_config.get(key)
                if runtime is None:
                    runtime = cls(load_settings({"tipsessions": config}))
                    if len(_by_config) >= _MAX_CONFIGS:
                        _by_config.pop(next(iter(_by_config)))
                    _by_config[key] = runtime
        return runtime

    def backend(self, name: str) -> Backend:
        """The backend configured as ``name``, built on first use."""
        backend = self._backends.get(name)
        if backend is None:
            with self._lock:
                backend = self._backends.get(name)
                if backend is None:
                    backend = self._backends[name] = self._build(name)
        return backend

    def _build(self, name: str) -> Backend:
        target = self.settings.backends.get(name)
        if target is None:
            raise ConfigError(
                name,
                f"unknown backend {name!r}; configured backends: "
                f"{', '.join(sorted(self.settings.backends))} "
                '(add your own under config["tipsessions"]["backends"])',
            )
        cls = import_backend(name, target)
        return cls(name, self.settings.backend_options.get(name, {}), self.keyring)


def lifetime_of(settings: Settings, idle: int | None, cookie_args: Mapping[str, Any]) -> Lifetime:
    """A session's lifetime from the settings, its idle window and its cookie's attributes."""
    return Lifetime(
        idle=idle,
        absolute=settings.session_absolute_max_age,
        refresh_interval=settings.session_refresh_interval,
        cookie_max_age=cookie_args["max_age"],
        server_ttl=settings.server_ttl,
        regenerate_grace=settings.regenerate_grace,
    )
