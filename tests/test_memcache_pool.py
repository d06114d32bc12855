"""What growing or shrinking a memcached pool costs, measured on real servers.

Sessions are placed by rendezvous hashing: a server that joins takes about
one session in N+1 from the others, a server that leaves loses only its
own, and no session moves between the servers that stay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.apps import build_backend
from tests.servers import ServerProcess, memcached_holds
from tipsessions.backends.server import new_session_id
from tipsessions.record import Record

SESSIONS = 300


@pytest.fixture
def four_nodes(server_log_dir: Path) -> Iterator[list[ServerProcess]]:
    with servers.memcached_nodes(4, server_log_dir) as nodes:
        yield nodes


def test_resizing_the_pool_moves_about_one_session_in_n(
    four_nodes: list[ServerProcess], unique_prefix: str, figures: dict[str, Any]
) -> None:
    a, b, c, d = (node.address for node in four_nodes)
    three = build_backend("memcache", servers=[a, b, c], prefix=unique_prefix)
    keys = [three.storage_key(new_session_id()) for _ in range(SESSIONS)]
    for key in keys:
        three.put(key, Record(data={"a": 1}, created=time.time()), 600)

    grown = build_backend("memcache", servers=[a, b, c, d], prefix=unique_prefix)
    lost_to_new = [key for key in keys if grown.read(key)[0] is None]
    shrunk = build_backend("memcache", servers=[a, b], prefix=unique_prefix)
    lost_to_gone = [key for key in keys if shrunk.read(key)[0] is None]

    grow, shrink = len(lost_to_new) / SESSIONS, len(lost_to_gone) / SESSIONS
    figures["memcache pool resize"] = (
        f"3 -> 4 servers moved {100 * grow:.0f} % of {SESSIONS} sessions (1/4 expected), "
        f"3 -> 2 moved {100 * shrink:.0f} % (1/3 expected)"
    )
    # Binomial spread around 1/4: four standard deviations either way.
    assert 0.15 <= grow <= 0.35
    # A server that leaves takes exactly its own sessions, and no other moves.
    assert set(lost_to_gone) == {key for key in keys if memcached_holds(four_nodes[2], key)}
    assert 0.2 <= shrink <= 0.47
