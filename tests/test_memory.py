"""What is specific to the memory backend: its bound and its expiry."""

from __future__ import annotations

import secrets

import time_machine

from tests.apps import Browser, build_backend
from tipsessions.backends.memory import MemoryBackend
from tipsessions.record import Record


def make_backend(max_entries: int = 10000) -> MemoryBackend:
    backend = build_backend("memory", max_entries=max_entries)
    assert isinstance(backend, MemoryBackend)
    return backend


def new_key() -> str:
    return secrets.token_hex(32)


def test_the_least_recently_used_session_is_evicted_past_max_entries() -> None:
    backend = make_backend(max_entries=3)
    first, second, third, fourth = (new_key() for _ in range(4))
    for key in (first, second, third):
        backend.put(key, Record(data={"k": key}), 60)
    backend.read(first)  # used again: now the most recent
    backend.put(fourth, Record(data={"k": fourth}), 60)
    assert backend.read(second) == (None, None)
    assert [backend.read(key)[0] is not None for key in (first, third, fourth)] == [True] * 3


def test_max_entries_from_the_configuration_bounds_the_app() -> None:
    settings = {"default_backend": "memory", "memory": {"max_entries": 2}}
    first = Browser(**settings)
    first(lambda h: h.session.__setitem__("who", "first"))
    for who in ("second", "third"):
        other = Browser(**settings)
        other.app = other.web.app = first.app
        other(lambda h, who=who: h.session.__setitem__("who", who))
    assert first(lambda h: (h.session.new, h.session.get("who"))) == (True, None)


def test_entries_expire_and_touch_extends_only_live_ones() -> None:
    backend = make_backend()
    live, retired = new_key(), new_key()
    with time_machine.travel(1_900_000_000, tick=False) as clock:
        backend.put(live, Record(data={"a": 1}), 10)
        backend.put(retired, Record(tombstone=True), 10)
        clock.shift(8)
        assert backend.touch(live, 10) is True
        assert backend.touch(retired, 10) is False
        clock.shift(5)
        assert backend.read(live)[0] == Record(data={"a": 1})
        assert backend.read(retired) == (None, None)
        clock.shift(10)
        assert backend.read(live) == (None, None)


def test_stored_records_are_copies_not_shared_objects() -> None:
    backend = make_backend()
    key = new_key()
    stored = Record(data={"cart": [1]})
    backend.put(key, stored, 60)
    stored.data["cart"].append(2)
    loaded, _ = backend.read(key)
    assert loaded is not None
    loaded.data["cart"].append(3)
    assert backend.read(key)[0] == Record(data={"cart": [1]})
