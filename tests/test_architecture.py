"""The package's shape: small modules, backends below the core, no import cycles, no banners.

These hold the layout the backend-author and contributor docs describe: a
request's data path reads top to bottom in handlers, store and one backend
file, and a backend file holds only its storage calls.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tipsessions"
#: What a backend may use from the core: the layer below sessions and stores.
BACKEND_MAY_IMPORT = {"errors", "cookies", "record", "json_values", "binding"}
#: Lines of each built-in backend's file, its module docstring included.
BACKEND_FILE_LINES = {
    "memory": 80,
    "securecookie": 40,
    "encryptedcookie": 40,
    "file": 160,
    "memcache": 160,
    "redis": 160,
    "datastore": 160,
}
_BANNER = re.compile(r"^\s*#\s*([-=*#~])\1{2,}|^\s*#.*\s([-=])\2{2,}\s*$")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(["tipsessions", *parts])] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports, at any depth of its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_over_300_lines(name: str) -> None:
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= 300, f"{name} has {lines} lines"


@pytest.mark.parametrize("backend", sorted(BACKEND_FILE_LINES))
def test_built_in_backend_files_stay_small(backend: str) -> None:
    path = PACKAGE / "backends" / f"{backend}.py"
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= BACKEND_FILE_LINES[backend], f"{path.name} has {lines} lines"


def test_backends_import_nothing_from_above_them() -> None:
    upward = {
        (name, target)
        for name, targets in _graph().items()
        if name.startswith("tipsessions.backends")
        for target in targets
        if not target.startswith("tipsessions.backends")
        and target.removeprefix("tipsessions.") not in BACKEND_MAY_IMPORT
    }
    assert not upward


def test_the_layer_below_backends_imports_only_itself() -> None:
    graph = _graph()
    for module in BACKEND_MAY_IMPORT:
        above = {
            target
            for target in graph[f"tipsessions.{module}"]
            if target.removeprefix("tipsessions.") not in BACKEND_MAY_IMPORT
        }
        assert not above, module


def test_no_import_cycles() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            pytest.fail(f"import cycle: {cycle}")
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_section_banners() -> None:
    banners = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in _modules().values()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _BANNER.search(line)
    ]
    assert not banners
