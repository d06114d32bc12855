"""The SQLite backend of the custom backends page keeps the contract.

The page's "Prove it" section shows docs/examples/sqlite_backend_tests.py,
and that very class runs here. It imports the backend as ``sqlite_backend``,
the example file next to it, which is importable under that name only while
the class is loaded.
"""

from __future__ import annotations

import sys

import pytest

from tests.examples import load_example

with pytest.MonkeyPatch.context() as patch:
    patch.setitem(sys.modules, "sqlite_backend", load_example("sqlite_backend"))
    TestSQLiteBackend = load_example("sqlite_backend_tests").TestSQLiteBackend
