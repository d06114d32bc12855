"""The built-in backends by name, and how a configured name becomes a backend class."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from .base import Backend

#: Built-in backends: name -> ``"module:Class"``, imported on first use so
#: that an extra that is not installed costs nothing until it is asked for.
BUILTIN_BACKENDS: dict[str, str] = {
    "securecookie": "tipsessions.backends.securecookie:SecureCookieBackend",
    "encryptedcookie": "tipsessions.backends.encryptedcookie:EncryptedCookieBackend",
    "memory": "tipsessions.backends.memory:MemoryBackend",
    "file": "tipsessions.backends.file:FileBackend",
    "memcache": "tipsessions.backends.memcache:MemcacheBackend",
    "redis": "tipsessions.backends.redis:RedisBackend",
    "datastore": "tipsessions.backends.datastore:DatastoreBackend",
}

#: The ``pip install "tipsessions[extra]"`` that brings a backend's client.
BACKEND_EXTRAS: dict[str, str] = {
    "memcache": "memcache",
    "redis": "redis",
    "datastore": "datastore",
}


def import_backend(name: str, target: Any) -> type[Backend]:
    """The backend class ``target`` names (a class or a dotted path), or :class:`ConfigError`."""
    # Named as the user knows it: by its name, or by the entry they added.
    where = name if BUILTIN_BACKENDS.get(name) == target else f"tipsessions.backends.{name}"
    if isinstance(target, str):
        module_name, _, attribute = target.replace(":", ".").rpartition(".")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except ImportError as error:
            extra = next(
                (BACKEND_EXTRAS.get(n) for n, t in BUILTIN_BACKENDS.items() if t == target), None
            )
            if extra is not None:
                raise ConfigError(
                    where,
                    f"the {name} backend needs {error.name or 'a module'!r}, which is not "
                    f"installed: install tipsessions with its {extra!r} extra "
                    f"(pip install '.[{extra}]' in a tipsessions checkout)",
                ) from error
            raise ConfigError(where, f"cannot import {target!r}: {error}") from error
        except AttributeError as error:
            raise ConfigError(where, f"cannot import {target!r}: {error}") from error
    if not (isinstance(target, type) and issubclass(target, Backend)):
        raise ConfigError(where, f"{target!r} is not a tipsessions.backends.Backend class")
    return target


def builtin_options() -> dict[str, dict[str, Any]]:
    """Each built-in backend's options and their defaults, for the configuration reference.

    Imports every built-in backend: their extras must be installed.
    """
    sections = {
        name: dict(import_backend(name, path).options_class())
        for name, path in BUILTIN_BACKENDS.items()
    }
    return {name: section for name, section in sections.items() if section}
