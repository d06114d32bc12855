"""The documentation builds cleanly and cannot drift from the code.

* The configuration reference documents exactly the keys of
  ``tipsessions.config.DEFAULTS`` and of the built-in backends' options,
  each with the default the code uses.
* Every public name is in the API reference.
* The examples the pages include are run, not just shown.
* The build itself runs with warnings as errors, as ``make docs`` does.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import webapp2
import webtest

import tipsessions
from sample_app.app import Request as SampleRequest
from tests.examples import load_example
from tipsessions.backends.catalog import builtin_options
from tipsessions.config import DEFAULTS as COMMON_DEFAULTS

#: Every setting, the built-in backends' sections included.
DEFAULTS = {**COMMON_DEFAULTS, **builtin_options()}
DOCS = Path(__file__).resolve().parent.parent / "docs"
CONFIG_PAGE = DOCS / "configuration.rst"

# ".. confval:: name" followed by its indented options.
CONFVAL = re.compile(r"^\.\. confval:: (?P<name>\S+)\n(?P<options>(?:   :\w+:.*\n)*)", re.M)
DEFAULT_OPTION = re.compile(r"^   :default: ``(?P<literal>.+?)``", re.M)


def flatten(defaults: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``("cookie_args.max_age", None)`` and so on; empty dicts are leaves."""
    for key, value in defaults.items():
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def documented_settings() -> dict[str, str | None]:
    """confval name -> the literal of its ``:default:`` option (None if absent)."""
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    settings: dict[str, str | None] = {}
    for match in CONFVAL.finditer(text):
        default = DEFAULT_OPTION.search(match["options"])
        settings[match["name"]] = default["literal"] if default else None
    return settings


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert set(documented_settings()) == {name for name, _ in flatten(DEFAULTS)}


@pytest.mark.parametrize("name, default", list(flatten(DEFAULTS)))
def test_each_documented_default_is_the_one_in_the_code(name: str, default: Any) -> None:
    literal = documented_settings().get(name)
    assert literal is not None, f"{name} has no :default: in configuration.rst"
    assert ast.literal_eval(literal) == default, f"{name}: docs say {literal}, code has {default!r}"


def test_every_setting_has_a_type_and_an_explanation() -> None:
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    for match in CONFVAL.finditer(text):
        assert ":type:" in match["options"], f"{match['name']} has no :type:"
        following = text[match.end() :].lstrip("\n")
        assert following.startswith("   ") and len(following.split("\n\n")[0]) > 40, (
            f"{match['name']} has no explanation"
        )


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    missing = [name for name in tipsessions.__all__ if f"tipsessions.{name}\n" not in api]
    assert missing == []


def test_the_migration_table_names_every_public_session_method() -> None:
    migrating = (DOCS / "migrating.rst").read_text(encoding="utf-8")
    for method in (
        "add_flash",
        "get_flashes",
        "set_t",
        "get_t",
        "delete_t",
        "regenerate_id",
        "invalidate",
        "get_session",
        "set_cookie",
        "delete_cookie",
        "get_secure_cookie",
        "set_secure_cookie",
        "save_sessions",
    ):
        assert f"``{method}(" in migrating, method


def test_the_index_example_counts_visits() -> None:
    source = (DOCS / "examples" / "counter.py").read_text(encoding="utf-8")
    assert len([line for line in source.splitlines() if line.strip()]) <= 15

    client = webtest.TestApp(load_example("counter").app)

    assert client.get("/").text == "Visit number 1"
    assert client.get("/").text == "Visit number 2"


def test_the_quickstart_flow_signs_in_and_out() -> None:
    app = load_example("login").app
    # webapp2 spools every POST body to a temporary file it never closes,
    # which warnings-as-errors reports; the sample's request class does not.
    app.request_class = SampleRequest
    client = webtest.TestApp(app)

    assert client.get("/").location.endswith("/login")
    failed = client.post("/login", {"email": "ada@example.com", "password": "nope"}).follow()
    assert "Wrong email or password." in failed.text

    home = client.post("/login", {"email": "ada@example.com", "password": "lovelace"}).follow()
    assert "Welcome back!" in home.text
    assert "Hello, ada@example.com" in home.text
    assert "Welcome back!" not in client.get("/").text

    goodbye = client.post("/logout").follow()
    assert "You are signed out." in goodbye.text
    assert client.get("/").location.endswith("/login")


def test_the_testing_page_example_tests_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    login = load_example("login")
    login.app.request_class = SampleRequest  # as in test_the_quickstart_flow_signs_in_and_out
    monkeypatch.setitem(sys.modules, "login", login)
    tests = load_example("login_tests")

    names = [name for name in vars(tests) if name.startswith("test_")]
    assert len(names) == 3
    for name in names:
        getattr(tests, name)()


def test_the_custom_backend_example_keeps_and_revokes_sessions(tmp_path: Path) -> None:
    backend = load_example("sqlite_backend").SQLiteBackend

    class Handler(tipsessions.BaseHandler):
        def get(self, action: str) -> None:
            if action == "add":
                self.session["items"] = [*self.session.get("items", []), "tea"]
            elif action == "logout":
                self.session.invalidate()
            self.response.write(",".join(self.session.get("items", [])))

    app = webapp2.WSGIApplication(
        [webapp2.Route("/<action>", Handler)],
        config={
            "tipsessions": {
                "secret_key": "docs-example-secret-0123456789",
                "default_backend": "sqlite",
                "backends": {"sqlite": backend},
                "sqlite": {"path": str(tmp_path / "sessions.sqlite3")},
            }
        },
    )
    client = webtest.TestApp(app)

    client.get("/add")
    assert client.get("/add").text == "tea,tea"
    stolen = client.cookies["session"]
    assert client.get("/logout").text == ""

    replay = webtest.TestApp(app)
    replay.set_cookie("session", stolen)
    assert replay.get("/show").text == ""


def test_the_custom_backend_example_touches_live_records_only(tmp_path: Path) -> None:
    from tipsessions.cookies import Keyring
    from tipsessions.record import Record

    backend = load_example("sqlite_backend").SQLiteBackend(
        "sqlite", {"path": str(tmp_path / "s.sqlite3")}, Keyring(["docs-example-secret-0123456789"])
    )
    live, retired, missing = "a" * 64, "b" * 64, "c" * 64
    backend.put(live, Record(data={"n": 1}, created=1), 60)
    backend.put(retired, Record(tombstone=True), 60)

    assert backend.touch(live, 600) is True
    assert backend.touch(retired, 600) is False
    assert backend.touch(missing, 600) is False
    assert backend.read(live)[0] == Record(data={"n": 1}, created=1)


def test_the_screenshot_is_a_png_the_pages_show() -> None:
    screenshot = DOCS / "_static" / "sample-app.png"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "_static/sample-app.png" in (DOCS / "index.rst").read_text(encoding="utf-8")
    devices = DOCS / "_static" / "devices.png"
    assert devices.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "_static/devices.png" in (DOCS / "signing-out.rst").read_text(encoding="utf-8")


def test_the_docs_build_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
