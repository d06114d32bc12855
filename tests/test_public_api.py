"""The public surface: the names API.md promises, and what the package never imports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import webapp2

import tipsessions

API_NAMES = [
    "BaseHandler",
    "SessionMiddleware",
    "SessionMixin",
    "SessionStore",
    "get_store",
    "Session",
    "SessionError",
    "ConfigError",
    "SerializationError",
    "SessionTooLarge",
    "BackendUnavailable",
    "SessionConflict",
]

ERRORS = [
    "ConfigError",
    "SerializationError",
    "SessionTooLarge",
    "BackendUnavailable",
    "SessionConflict",
]

# Modules that can turn stored bytes into running code.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "shelve", "marshal", "dill", "cloudpickle"}

PACKAGE_DIR = Path(tipsessions.__file__).parent
SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


@pytest.mark.parametrize("name", API_NAMES)
def test_api_name_is_importable_from_the_package(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from tipsessions import {name}", namespace)
    assert namespace[name] is getattr(tipsessions, name)


def test_all_lists_every_api_name() -> None:
    assert set(API_NAMES) <= set(tipsessions.__all__)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(tipsessions).items()
        if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public == set(tipsessions.__all__)
    assert len(tipsessions.__all__) == len(set(tipsessions.__all__))


def test_star_import_gives_the_api() -> None:
    namespace: dict[str, object] = {}
    exec("from tipsessions import *", namespace)
    assert set(API_NAMES) <= namespace.keys()


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_is_a_session_error(name: str) -> None:
    error = getattr(tipsessions, name)
    assert issubclass(error, tipsessions.SessionError)
    assert issubclass(tipsessions.SessionError, Exception)


def test_base_handler_is_a_request_handler_with_sessions() -> None:
    assert issubclass(tipsessions.BaseHandler, tipsessions.SessionMixin)
    assert issubclass(tipsessions.BaseHandler, webapp2.RequestHandler)
    assert any(
        isinstance(m, tipsessions.SessionMiddleware) for m in tipsessions.BaseHandler.middleware
    )


def test_session_is_a_dict() -> None:
    assert issubclass(tipsessions.Session, dict)


def imported_modules(code: str) -> set[str]:
    """Top-level names of every module ``code`` imports, statically or by name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args:
            # __import__("pickle") and importlib.import_module("pickle").
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in {"__import__", "import_module"} and isinstance(first, ast.Constant):
                found.add(str(first.value).split(".")[0])
    return found


def test_the_package_sources_are_found() -> None:
    names = {source.relative_to(PACKAGE_DIR).as_posix() for source in SOURCES}
    assert {"__init__.py", "session.py", "store.py", "backends/base.py"} <= names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_no_module_imports_pickle_shelve_or_marshal(source: Path) -> None:
    assert imported_modules(source.read_text()) & UNSAFE_MODULES == set()


def test_the_import_scan_sees_every_way_of_importing() -> None:
    sample = (
        "import pickle\n"
        "from shelve import open\n"
        "import importlib\n"
        "importlib.import_module('marshal')\n"
        "__import__('cPickle')\n"
    )
    assert imported_modules(sample) >= {"pickle", "shelve", "marshal", "cPickle"}
