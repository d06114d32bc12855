"""The sample app's configuration, chosen by environment variables.

The app starts from :mod:`config.development`: the default session in a
signed cookie, the cart in session files. ``SAMPLE_CART_BACKEND`` moves the
cart to another backend; for a server backend its settings (addresses come
from the variables that module documents) are taken from the matching
example in :mod:`config`, so the sample exercises the same files users copy.
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Mapping
from typing import Any

from config.development import config as development

CART_BACKEND_VARIABLE = "SAMPLE_CART_BACKEND"
DEFAULT_CART_BACKEND = "file"
EMBEDDED_BACKENDS = ("file", "memory")
SERVER_BACKENDS = ("memcache", "redis", "datastore")


def config_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The application configuration for the cart backend ``environ`` asks for."""
    cart_backend = environ.get(CART_BACKEND_VARIABLE, DEFAULT_CART_BACKEND).strip()
    config = copy.deepcopy(development)
    if cart_backend in SERVER_BACKENDS:
        example = importlib.import_module(f"config.{cart_backend}").config
        config["tipsessions"][cart_backend] = copy.deepcopy(example["tipsessions"][cart_backend])
    elif cart_backend not in EMBEDDED_BACKENDS:
        choices = ", ".join(EMBEDDED_BACKENDS + SERVER_BACKENDS)
        raise SystemExit(f"{CART_BACKEND_VARIABLE}={cart_backend!r}: choose one of {choices}")
    config["sample_app"] = {"cart_backend": cart_backend}
    return config


def cart_backend(app_config: Mapping[str, Any]) -> str:
    """The backend the cart uses under ``app_config`` (``file`` if not said)."""
    return str(app_config.get("sample_app", {}).get("cart_backend", DEFAULT_CART_BACKEND))
