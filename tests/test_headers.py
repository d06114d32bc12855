"""Headers written directly must be exactly what WebOb would have written."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import time_machine
import webob
from hypothesis import given, settings

from tipsessions.headers import add_vary_cookie, make_private, set_cookie_header, write_cookies

ARGS = st.fixed_dictionaries(
    {
        "max_age": st.none() | st.integers(min_value=0, max_value=10**8),
        "path": st.none() | st.sampled_from(["/", "/app", "/a b", "/x;y", "/café"]),
        "domain": st.none() | st.sampled_from(["example.com", ".example.org", "a;b"]),
        "secure": st.booleans(),
        "httponly": st.booleans(),
        "samesite": st.sampled_from(["Lax", "Strict", None]),
    }
)
VALUES = st.none() | st.text(alphabet="abcXYZ019-_.~!@#$%^&*()+=`?|:/{}<>'", max_size=60)


def webob_header(name: str, value: str | None, args: dict[str, Any]) -> str:
    response = webob.Response()
    response.set_cookie(name, value, overwrite=True, **args)
    (header,) = response.headers.getall("Set-Cookie")
    return str(header)


@settings(max_examples=400, deadline=None)
@given(value=VALUES, args=ARGS)
def test_set_cookie_header_is_webobs(value: str | None, args: dict[str, Any]) -> None:
    if args["samesite"] == "None":
        args["secure"] = True
    with time_machine.travel(1_900_000_000.5, tick=False):
        assert set_cookie_header("session", value, args) == webob_header("session", value, args)


def test_a_value_webob_would_quote_goes_through_webob() -> None:
    args = {
        "max_age": None,
        "path": "/",
        "domain": None,
        "secure": False,
        "httponly": True,
        "samesite": "Lax",
    }
    assert set_cookie_header("k", "a[b]", args) == webob_header("k", "a[b]", args)


def test_writing_twice_keeps_one_header_per_cookie() -> None:
    args = {
        "max_age": 60,
        "path": "/",
        "domain": None,
        "secure": False,
        "httponly": True,
        "samesite": "Lax",
    }
    response = webob.Response()
    response.set_cookie("other", "1")
    write_cookies(response, {"session": ("a", args)})
    write_cookies(response, {"session": ("b", args), "sessionx": ("c", args)})
    headers = response.headers.getall("Set-Cookie")
    assert [h.split(";")[0] for h in headers] == ["other=1", "session=b", "sessionx=c"]


def test_vary_and_cache_control_are_extended_like_webob() -> None:
    cases = [None, "", "public", "max-age=60, public", "no-store", "private"]
    for given_value in cases:
        ours, theirs = webob.Response(), webob.Response()
        if given_value is not None:
            ours.headers["Cache-Control"] = theirs.headers["Cache-Control"] = given_value
        make_private(ours)
        theirs.cache_control.public = False
        theirs.cache_control.private = True
        assert ours.cache_control.private and not ours.cache_control.public
        assert ours.cache_control.properties == theirs.cache_control.properties, given_value
    # Directives are case-insensitive (RFC 9111); WebOb keeps a "Public" it should drop.
    response = webob.Response()
    response.headers["Cache-Control"] = "Public, max-age=5"
    make_private(response)
    assert response.headers["Cache-Control"] == "max-age=5, private"
    for vary in [None, "Accept-Encoding", "cookie", "Accept, Origin"]:
        response = webob.Response()
        if vary is not None:
            response.headers["Vary"] = vary
        add_vary_cookie(response)
        add_vary_cookie(response)
        tokens = [t.strip().lower() for t in response.headers["Vary"].split(",")]
        assert tokens.count("cookie") == 1
        assert len(response.headers.getall("Vary")) == 1
