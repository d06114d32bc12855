"""The contract every backend keeps, run against each built-in one for real.

The cases are those of :class:`tipsessions.testing.BackendContract`, the
suite a user runs on their own backend by subclassing it; here its
``settings`` come from conftest.py, parametrised over the seven built-in
backends, each on its own real server where it needs one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SERVER_BACKENDS, backend_settings
from tipsessions.testing import BackendContract


class TestContract(BackendContract):
    @pytest.fixture
    def settings(
        self, backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
    ) -> dict[str, Any]:
        return backend_settings(backend_name, request, tmp_path)

    @pytest.fixture
    def server_side(self, backend_name: str) -> bool:
        return backend_name in SERVER_BACKENDS

    @pytest.fixture
    def data_readable_in_cookie(self, backend_name: str) -> bool:
        return backend_name == "securecookie"
