"""Sphinx configuration of the tipsessions documentation.

Built with warnings as errors (``make docs``), so a broken reference, a
missing page in the table of contents or a docstring that does not parse
fails the build instead of publishing quietly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Document the checkout being built, not whichever tipsessions is installed.
sys.path.insert(0, str(ROOT))

import tipsessions  # noqa: E402

project = "tipsessions"
author = "the tipsessions authors"
copyright = "the tipsessions authors"
release = tipsessions.__version__
version = ".".join(release.split(".")[:2])

# The confval directive, used by the configuration reference, needs 7.4.
needs_sphinx = "7.4"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["tables.css"]
html_title = f"tipsessions {release}"
html_theme = "furo"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

#: Modules of the parts Session and SessionStore are assembled from: no API
#: of their own, so the reference shows what the parts stand on instead.
_PARTS = {
    "tipsessions.attributes",
    "tipsessions.flashes",
    "tipsessions.plain_cookies",
    "tipsessions.tracking",
}


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[Any]) -> None:
    """Show a class's public ancestry: a Session is a dict, whatever its parts."""
    shown: list[Any] = []
    for base in bases:
        parts = vars(base).get("__orig_bases__", ()) if base.__module__ in _PARTS else (base,)
        shown.extend(part for part in parts if part not in shown)
    bases[:] = shown or [object]


def setup(app: Any) -> None:
    app.connect("autodoc-process-bases", _public_bases)
