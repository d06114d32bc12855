"""The Session object: a dict that knows what changed, plus flashes and transients.

Unit tests build sessions directly; a session "loaded" from storage is one
built from a record with ``new=False``, exactly as backends build them. The
request tests at the end check what reaches storage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.apps import Browser, CallCounter, backend_of
from tipsessions import SerializationError, Session
from tipsessions.record import Record


def loaded(**data: Any) -> Session:
    """A session as a backend returns it for a valid cookie."""
    return Session(Record(data=data, created=1_900_000_000), new=False)


def stored() -> Session:
    return loaded(a=1, b=[1], c={"x": 1})


def test_a_fresh_session_is_new_and_unmodified() -> None:
    session = Session()
    assert (session.new, session.modified, dict(session)) == (True, False, {})


def test_a_loaded_session_is_not_new_and_unmodified() -> None:
    session = stored()
    assert (session.new, session.modified) == (False, False)


READS: dict[str, Callable[[Session], Any]] = {
    "getitem": lambda s: s["a"],
    "get": lambda s: s.get("b"),
    "get missing": lambda s: s.get("missing", 0),
    "contains": lambda s: "c" in s,
    "iterate": lambda s: list(s.items()),
    "copy": lambda s: s.copy(),
    "len": len,
    "pop missing with default": lambda s: s.pop("missing", None),
    "setdefault existing": lambda s: s.setdefault("a", 9),
    "read nested": lambda s: s["c"]["x"] + s["b"][0],
    "get_flashes when there are none": lambda s: s.get_flashes(),
    "get_t": lambda s: s.get_t("a"),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_reading_changes_nothing(read: Callable[[Session], Any]) -> None:
    session = stored()
    read(session)
    assert not session.modified
    assert not session.changes()


# Each change applied to stored(): (what it does, keys it sets, keys it deletes).
CHANGES: dict[str, tuple[Callable[[Session], Any], dict[str, Any], set[str]]] = {
    "setitem new key": (lambda s: s.__setitem__("d", 4), {"d": 4}, set()),
    "setitem existing key": (lambda s: s.__setitem__("a", 2), {"a": 2}, set()),
    "delitem": (lambda s: s.__delitem__("a"), {}, {"a"}),
    "pop": (lambda s: s.pop("b"), {}, {"b"}),
    "popitem": (lambda s: s.popitem(), {}, {"c"}),  # dicts pop the last key
    "setdefault new key": (lambda s: s.setdefault("d", [0]), {"d": [0]}, set()),
    "update with a dict": (lambda s: s.update({"a": 2, "d": 4}), {"a": 2, "d": 4}, set()),
    "update with pairs": (lambda s: s.update([("d", 4)]), {"d": 4}, set()),
    "update with keywords": (lambda s: s.update(d=4), {"d": 4}, set()),
    "|=": (lambda s: s.__ior__({"d": 4}), {"d": 4}, set()),
    "clear": (lambda s: s.clear(), {}, {"a", "b", "c"}),
    "nested list append": (lambda s: s["b"].append(2), {"b": [1, 2]}, set()),
    "nested dict setitem": (lambda s: s["c"].__setitem__("y", 2), {"c": {"x": 1, "y": 2}}, set()),
    "nested dict delete": (lambda s: s["c"].pop("x"), {"c": {}}, set()),
    "set then delete a new key": (lambda s: (s.__setitem__("d", 4), s.pop("d")), {}, {"d"}),
}


@pytest.mark.parametrize(("change", "updates", "deleted"), CHANGES.values(), ids=CHANGES.keys())
def test_change_is_tracked(
    change: Callable[[Session], Any], updates: dict[str, Any], deleted: set[str]
) -> None:
    session = stored()
    change(session)
    changes = session.changes()
    assert (changes.updates, changes.deleted) == (updates, deleted)
    assert session.modified


def test_ior_operator_tracks_and_keeps_the_session_object() -> None:
    session = stored()
    same = session
    same |= {"d": 4}
    assert same is session
    assert session.changes().updates == {"d": 4}


# Every way user code can get hold of a stored list, then change it in place.
REACH_THE_LIST: dict[str, Callable[[Session], Any]] = {
    "getitem": lambda s: s["b"],
    "get": lambda s: s.get("b"),
    "setdefault": lambda s: s.setdefault("b", []),
    "values": lambda s: next(v for v in s.values() if isinstance(v, list)),
    "items": lambda s: dict(s.items())["b"],
    "copy": lambda s: s.copy()["b"],
    "dict()": lambda s: dict(s)["b"],
    "** unpacking": lambda s: {**s}["b"],
    "| operator": lambda s: (s | {})["b"],
}


@pytest.mark.parametrize("reach", REACH_THE_LIST.values(), ids=REACH_THE_LIST.keys())
def test_in_place_change_is_seen_however_the_value_was_reached(
    reach: Callable[[Session], Any],
) -> None:
    session = stored()
    reach(session).append(2)
    assert session.changes().updates == {"b": [1, 2]}


def test_value_held_across_a_save_is_still_tracked() -> None:
    session = stored()
    cart = session["b"]
    fresh: list[int] = []
    session["new"] = fresh
    session.saved()
    assert not session.modified
    cart.append(2)
    fresh.append(3)
    assert session.changes().updates == {"b": [1, 2], "new": [3]}


def test_nested_change_undone_is_no_change() -> None:
    session = stored()
    session["b"].append(2)
    session["b"].pop()
    assert not session.modified


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, True), (0, False), (1, 1.0)],
    ids=["int to bool", "zero to False", "int to float"],
)
def test_nested_change_of_type_only_is_detected(before: Any, after: Any) -> None:
    # Python calls 1 == True == 1.0, but JSON stores 1, true and 1.0 apart.
    session = loaded(flags=[before])
    session["flags"][0] = after
    assert session.modified
    assert session.changes().updates == {"flags": [after]}


def test_changes_start_over_after_a_save() -> None:
    session = stored()
    session["b"].append(2)
    session.saved()
    assert not session.modified
    session["b"].append(3)
    assert session.changes().updates == {"b": [1, 2, 3]}


def test_a_fresh_session_reports_every_key_as_set() -> None:
    session = Session()
    session.update(a=1, b=[2])
    assert session.changes().updates == {"a": 1, "b": [2]}


def test_non_string_top_level_key_is_refused() -> None:
    with pytest.raises(TypeError):
        Session()[1] = "one"  # type: ignore[index]


def test_flashes_are_value_level_tuples_oldest_first_read_once() -> None:
    session = Session()
    session.add_flash("Saved.", "success")
    session.add_flash({"count": 2})
    flashes = session.get_flashes()
    assert flashes == [("Saved.", "success"), ({"count": 2}, None)]
    assert all(type(flash) is tuple for flash in flashes)
    assert session.get_flashes() == []


def test_adding_a_flash_is_a_change() -> None:
    session = stored()
    session.add_flash("hello")
    assert session.modified


def test_reading_stored_flashes_is_a_change() -> None:
    session = Session(
        Record(data={"a": 1}, flashes={"_flash": [["id1", "hi", None]]}, created=0), new=False
    )
    assert session.get_flashes() == [("hi", None)]
    assert session.modified


def test_flashes_under_another_key_are_kept_apart() -> None:
    session = Session()
    session.add_flash("bad", "error", key="_errors")
    assert session.get_flashes() == []
    assert session.get_flashes("_errors") == [("bad", "error")]


def test_flash_value_must_be_json() -> None:
    with pytest.raises(SerializationError) as caught:
        Session().add_flash(("not", "json"))
    assert caught.value.key == "_flash"


def test_transient_value_is_seen_first_by_getitem_and_get() -> None:
    session = loaded(user="stored")
    session.set_t("user", "transient")
    assert (session["user"], session.get("user"), "user" in session) == (
        "transient",
        "transient",
        True,
    )
    session.delete_t("user")
    assert session["user"] == "stored"


def test_get_t_sees_transient_values_only() -> None:
    session = loaded(user="stored")
    assert session.get_t("user") is None
    assert session.get_t("user", "fallback") == "fallback"
    session.set_t("token", "t0k")
    assert session.get_t("token") == "t0k"


def test_transient_values_never_mark_modified_nor_reach_storage() -> None:
    session = loaded(user="stored")
    session.set_t("token", object())  # need not even be JSON
    session.set_t("user", "transient")
    session.delete_t("missing")
    assert not session.modified
    assert session.to_record().data == {"user": "stored"}


def test_regenerate_id_keeps_the_data_and_marks_modified() -> None:
    session = stored()
    session.regenerate_id()
    assert session.modified
    assert dict(session) == {"a": 1, "b": [1], "c": {"x": 1}}
    assert not session.changes()  # the data itself did not change


def test_invalidate_empties_everything_and_starts_new() -> None:
    session = stored()
    session.add_flash("bye")
    session.set_t("token", "t")
    session.invalidate()
    assert (dict(session), session.get_flashes(), session.get_t("token")) == ({}, [], None)
    assert session.new
    assert session.modified


NOT_JSON: dict[str, Any] = {
    "tuple": (1, 2),
    "set": {1, 2},
    "object": object(),
    "bytes": b"bytes",
    "int dict key": {1: "one"},
    "nested int dict key": {"a": {2: "two"}},
    "NaN": float("nan"),
    "infinity": float("inf"),
    "tuple in a list": [1, (2, 3)],
}


@pytest.mark.parametrize("value", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_non_json_value_is_refused_at_assignment_naming_the_key(value: Any) -> None:
    session = Session()
    with pytest.raises(SerializationError) as caught:
        session["prefs"] = value
    assert caught.value.key == "prefs"
    assert "prefs" in str(caught.value)
    assert "prefs" not in session


ASSIGNMENTS: dict[str, Callable[[Session, Any], Any]] = {
    "update": lambda s, v: s.update(prefs=v),
    "setdefault": lambda s, v: s.setdefault("prefs", v),
    "|=": lambda s, v: s.__ior__({"prefs": v}),
}


@pytest.mark.parametrize("assign", ASSIGNMENTS.values(), ids=ASSIGNMENTS.keys())
def test_every_way_of_assigning_checks_the_value(assign: Callable[[Session, Any], Any]) -> None:
    with pytest.raises(SerializationError) as caught:
        assign(Session(), (1, 2))
    assert caught.value.key == "prefs"


NESTED_MUTATIONS: dict[str, Callable[[Session], Any]] = {
    "append an object": lambda s: s["l"].append(object()),
    "append a tuple": lambda s: s["l"].append((1, 2)),
    "append NaN": lambda s: s["l"].append(float("nan")),
    "int key in a dict": lambda s: s["d"].__setitem__(3, "x"),
}


@pytest.mark.parametrize("mutate", NESTED_MUTATIONS.values(), ids=NESTED_MUTATIONS.keys())
@pytest.mark.parametrize("origin", ["loaded", "assigned"])
def test_nested_mutation_into_non_json_raises_at_save_naming_the_key(
    mutate: Callable[[Session], Any], origin: str
) -> None:
    if origin == "loaded":
        session = loaded(l=[1], d={"k": 1})
    else:
        session = Session()
        session.update(l=[1], d={"k": 1})
    mutate(session)
    assert session.modified
    for save_step in (session.changes, session.to_record):
        with pytest.raises(SerializationError) as caught:
            save_step()
        assert caught.value.key in {"l", "d"}


BACKENDS = ["securecookie", "encryptedcookie", "memory"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_is_true_until_a_session_was_stored(backend: str) -> None:
    browser = Browser(default_backend=backend)
    assert browser(lambda h: h.session.new) is True
    assert browser(lambda h: h.session.new) is True  # nothing stored yet
    browser(lambda h: h.session.__setitem__("a", 1))
    assert browser(lambda h: h.session.new) is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_flashes_keep_their_tuple_shape_after_a_round_trip(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.add_flash(["a", 1], "info"))
    flashes = browser(lambda h: h.session.get_flashes())
    assert flashes == [(["a", 1], "info")]
    assert type(flashes[0]) is tuple


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_json_assignment_fails_the_request(backend: str) -> None:
    browser = Browser(default_backend=backend)
    error = browser.fail(lambda h: h.session.__setitem__("when", {1, 2}))
    assert isinstance(error, SerializationError)
    assert error.key == "when"


@pytest.mark.parametrize("origin", ["loaded", "assigned"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_mutation_into_non_json_fails_the_request_and_saves_nothing(
    backend: str, origin: str
) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.update(l=[1], kept="yes"))
    calls = CallCounter(backend_of(browser))

    def spoil(h: Any) -> None:
        h.session["kept"] = "changed"
        if origin == "assigned":
            h.session["l"] = [1]
        h.session["l"].append(object())

    error = browser.fail(spoil)
    assert isinstance(error, SerializationError)
    assert error.key == "l"
    assert calls.writes() == 0
    assert browser(lambda h: dict(h.session)) == {"l": [1], "kept": "yes"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_change_of_type_only_is_saved(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.__setitem__("prefs", {"dark": 0}))
    browser(lambda h: h.session["prefs"].__setitem__("dark", False))
    assert browser(lambda h: h.session["prefs"]["dark"]) is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_regenerate_id_alone_reissues_the_cookie(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    browser(lambda h: h.session.regenerate_id())
    (header,) = browser.set_cookies()
    assert header.startswith("session=") and "Max-Age=0" not in header
    assert browser(lambda h: dict(h.session)) == {"user": "ada"}
