"""The contract suite's test class: its fixtures, and every case.

The cases themselves are in :mod:`.lifecycle` and :mod:`.safety`; this
class adds what they ask for, so that a subclass overriding ``settings``
runs them all against its backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from ..backends import ServerBackend
from .browser import Browser, backend_of
from .lifecycle import LifecycleCases
from .safety import SafetyCases

#: Settings the suite chooses itself, per test; ``settings`` must leave them out.
SUITE_SETTINGS = ("secret_key", "session_max_age", "session_absolute_max_age")


class BackendContract(SafetyCases, LifecycleCases):
    """The behaviour every backend keeps, run against the one ``settings`` names.

    Override the ``settings`` fixture (a method decorated with
    ``@pytest.fixture``) to return the ``config["tipsessions"]`` keys that
    put the default session on the backend under test: ``default_backend``,
    the backend's registration under ``backends`` and its options section,
    with a per-test location (``tmp_path``, a unique key prefix) so that
    tests stay independent. Leave out ``secret_key`` and the lifetimes
    (``session_max_age``, ``session_absolute_max_age``): the suite sets them
    per test.

    Where a case depends on what a backend *can* do, it asks a fixture that
    a subclass may override too:

    * ``server_side``: the cookie holds only an id and the record is on a
      server, so a copied cookie can be revoked. By default, whether the
      backend is a :class:`~tipsessions.backends.ServerBackend`.
    * ``data_readable_in_cookie``: the client can read the data in its
      cookie (signed, not encrypted, like ``securecookie``). False by
      default.

    Tests a subclass adds may use the fixtures ``browser`` (a
    :class:`~tipsessions.conformance.browser.Browser` of an application on
    the backend) and ``clock`` (a ``time_machine`` traveller).
    """

    @pytest.fixture
    def settings(self) -> dict[str, Any]:
        """The settings that put the default session on the backend under test."""
        pytest.fail(
            f"{type(self).__name__}: override the settings fixture to return the "
            "tipsessions settings of the backend under test",
            pytrace=False,
        )

    @pytest.fixture(autouse=True)
    def _usable_settings(self, settings: dict[str, Any]) -> None:
        # Without default_backend the suite would test securecookie, and pass.
        if "default_backend" not in settings:
            problem = "must name the backend under test as default_backend"
        elif chosen := [key for key in SUITE_SETTINGS if key in settings]:
            problem = f"must leave out {', '.join(chosen)}: the suite sets them per test"
        else:
            return
        pytest.fail(f"{type(self).__name__}: settings {problem}", pytrace=False)

    @pytest.fixture
    def browser(self, settings: dict[str, Any]) -> Browser:
        return Browser(**settings)

    @pytest.fixture
    def server_side(self, browser: Browser) -> bool:
        return isinstance(backend_of(browser), ServerBackend)

    @pytest.fixture
    def data_readable_in_cookie(self) -> bool:
        return False

    @pytest.fixture
    def clock(self) -> Iterator[time_machine.Traveller]:
        # tick=True: client libraries time their sockets with the clock.
        with time_machine.travel(1_900_000_000, tick=True) as traveller:
            yield traveller
