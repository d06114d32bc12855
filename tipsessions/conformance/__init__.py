"""The contract every session backend keeps, as a pytest test class.

Every built-in backend passes it, and so can yours: subclass
:class:`BackendContract` in a test module and override its ``settings``
fixture to put the default session on your backend::

    import pytest
    from tipsessions.testing import BackendContract

    class TestSQLiteBackend(BackendContract):
        @pytest.fixture
        def settings(self, tmp_path):
            return {
                "default_backend": "sqlite",
                "backends": {"sqlite": "myapp.sessions:SQLiteBackend"},
                "sqlite": {"path": str(tmp_path / "sessions.sqlite3")},
            }

Each test drives a fresh application through WebTest, as one browser
would, and looks at the backend the application built: nothing is mocked.
"""

import pytest

# pytest explains a failed assert (the values on each side) only in modules
# it rewrites, and it rewrites a module outside the tests only when told so
# before that module is imported.
pytest.register_assert_rewrite(
    f"{__name__}.browser", f"{__name__}.contract", f"{__name__}.lifecycle", f"{__name__}.safety"
)

from .contract import BackendContract  # noqa: E402

__all__ = ["BackendContract"]
