"""The contract suite, run on the SQLite backend (sqlite_backend.py): ``pytest``."""

import pytest
from sqlite_backend import SQLiteBackend

from tipsessions.testing import BackendContract


class TestSQLiteBackend(BackendContract):
    @pytest.fixture
    def settings(self, tmp_path):
        return {
            "default_backend": "sqlite",
            "backends": {"sqlite": SQLiteBackend},
            "sqlite": {"path": str(tmp_path / "sessions.sqlite3")},
        }
