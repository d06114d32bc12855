"""Whatever a client sends is data: a session or a new one, never an exception.

Each case here is an input that once escaped as an exception, or cost
unbounded work: a foreign cookie with bytes over 0x7F, signed values with
absurd timestamps, nesting and compression bombs, values that JSON cannot
give back, ids with a trailing newline. The properties at the end feed the
decoding path arbitrary bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import zlib
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import time_machine
from hypothesis import HealthCheck, given, settings

from tests.apps import SECRET, Browser, plant_session_id
from tests.conftest import SERVER_BACKENDS, backend_settings
from tipsessions import SerializationError
from tipsessions.cookies import BadCookie, Keyring, now_ms
from tipsessions.headers import MAX_HEADER_CHARS, MAX_SAME_NAME, cookie_values
from tipsessions.record import MAX_DEPTH, Record, decode_json
from tipsessions.runtime import Runtime


def forge(keys: Keyring, name: str, payload: bytes, *, issued: int, kind: int = 2) -> str:
    """A genuinely signed value with any issue time and format byte."""
    head = bytes((kind,)) + issued.to_bytes(6, "big") + payload
    mac = hmac.digest(keys.signing_keys(name)[0], head, "sha256")
    return base64.urlsafe_b64encode(head + mac).rstrip(b"=").decode()


def keyring(browser: Browser) -> Keyring:
    return Runtime.of(browser.app).keyring


def security_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tipsessions.security"]


def read_session(h: Any) -> tuple[bool, dict[str, Any]]:
    return h.session.new, dict(h.session)


@pytest.mark.parametrize(
    "foreign",
    ['tracker="\x80"', "tracker=\xff\xfe", 'a="\\', "=;=;;", 'x="unterminated', "\x00=\x01"],
)
def test_a_foreign_cookie_never_breaks_a_session(settings: dict[str, Any], foreign: str) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    ours = f"session={browser.cookie()}"
    for header in (f"{foreign}; {ours}", f"{ours}; {foreign}"):
        browser.forget_cookies()
        result = browser(read_session, extra_environ={"HTTP_COOKIE": header})
        assert result == (False, {"user": "ada"})


def test_a_foreign_cookie_never_breaks_a_secure_cookie() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"theme": "dark"}))
    header = f'tracker="\x80"; prefs={browser.cookie("prefs")}'
    browser.forget_cookies()
    assert browser(
        lambda h: h.session_store.get_secure_cookie("prefs"), extra_environ={"HTTP_COOKIE": header}
    ) == {"theme": "dark"}


@pytest.mark.parametrize("issued", [2**48 - 1, 2**47, now_ms() + 3_600_000])
@pytest.mark.parametrize("backend", ["securecookie", "memory"])
def test_a_signed_value_issued_in_the_future_is_a_new_session(
    backend: str, issued: int, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(default_backend=backend)
    payload = Record(data={"user": "mallory"}, created=0).to_json()
    if backend == "memory":
        payload = b"A" * 43
    browser.set_cookie("session", forge(keyring(browser), "session", payload, issued=issued))
    caplog.set_level(logging.WARNING)
    assert browser(read_session) == (True, {})
    assert len(security_lines(caplog)) == 1


def test_a_signed_value_issued_at_time_zero_is_expired_not_an_error() -> None:
    browser = Browser(session_max_age=60)
    payload = Record(data={"user": "mallory"}, created=0).to_json()
    browser.set_cookie("session", forge(keyring(browser), "session", payload, issued=0))
    assert browser(read_session) == (True, {})


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"d":' + b'{"a":' * (MAX_DEPTH + 5) + b"1" + b"}" * (MAX_DEPTH + 6) + b',"c":0}',
        b'{"d":{"n":' + b"9" * 5000 + b'},"c":0}',
        b'{"d":{"n":1e999},"c":0}',
        b'{"d":{"n":NaN},"c":0}',
        b'{"d":{"s":"\\ud800"},"c":0}',
        b'{"d":[],"c":0}',
        b'{"d":{},"c":"yesterday"}',
        b'{"d":{},"c":0,"f":{"_flash":[[1,2]]}}',
        b'{"d":{},"c":0,"m":-5}',
        b"\xff\xfe{}",
        b"{}" + b" " * 10,
    ],
    ids=[
        "deep list",
        "nesting past the limit",
        "integer over the digit limit",
        "float overflow",
        "NaN",
        "lone surrogate",
        "data not a dict",
        "creation time not a number",
        "malformed flash",
        "negative lifetime",
        "not UTF-8",
        "trailing data",
    ],
)
def test_a_signed_but_malformed_payload_is_a_new_session(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser()
    kind = 2
    if len(payload) > 3000:  # compressed, as a cookie that size would be
        kind, payload = 3, zlib.compress(payload)
    value = forge(keyring(browser), "session", payload, issued=now_ms(), kind=kind)
    browser.set_cookie("session", value)
    caplog.set_level(logging.WARNING)
    assert browser(read_session) == (True, {})
    (line,) = security_lines(caplog)
    assert "mallory" not in line.getMessage()


def test_a_compression_bomb_is_inflated_only_to_the_bound() -> None:
    browser = Browser()
    for inflated in (1024 * 1024, 64 * 1024 * 1024):
        bomb = zlib.compress(b'{"d":{"x":"' + b"A" * inflated + b'"},"c":0}', 9)
        value = forge(keyring(browser), "session", bomb, issued=now_ms(), kind=3)
        with pytest.raises(BadCookie):
            keyring(browser).unsign("session", value, None)
        browser.set_cookie("session", value)
        assert browser(read_session) == (True, {})
    with pytest.raises(BadCookie, match="too large"):
        keyring(browser).unsign("session", value_of_size(keyring(browser), 1024 * 1024), None)


def value_of_size(keys: Keyring, inflated: int) -> str:
    bomb = zlib.compress(b'{"d":{"x":"' + b"A" * inflated + b'"},"c":0}', 9)
    return forge(keys, "session", bomb, issued=now_ms(), kind=3)


def test_a_huge_cookie_header_is_searched_only_up_to_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("user", "ada"))
    ours = f"session={browser.cookie()}"
    browser.forget_cookies()
    junk = "; ".join(f"junk{i}=" + "x" * 100 for i in range(10_000))  # about 1 MiB
    caplog.set_level(logging.WARNING)
    first = browser(read_session, extra_environ={"HTTP_COOKIE": f"{ours}; {junk}"})
    assert first == (False, {"user": "ada"})
    assert browser(read_session, extra_environ={"HTTP_COOKIE": f"{junk}; {ours}"}) == (True, {})
    assert any("only the first" in r.getMessage() for r in security_lines(caplog))


def test_cookie_values_finds_only_whole_names_within_the_bound() -> None:
    header = 'xsession=1; session_2=2; session="3"; a=b;session=4 ; session=5'
    assert cookie_values({"HTTP_COOKIE": header}, "session") == ["3", "4", "5"]
    many = "; ".join(["session=v"] * 100)
    assert len(cookie_values({"HTTP_COOKIE": many}, "session")) == MAX_SAME_NAME
    assert cookie_values({"HTTP_COOKIE": ";" * (MAX_HEADER_CHARS * 2)}, "session") == []
    assert cookie_values({}, "session") == []


@pytest.mark.parametrize("order", ["ours first", "ours last"])
def test_a_name_sent_twice_takes_the_genuine_value(settings: dict[str, Any], order: str) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    ours, foreign = f"session={browser.cookie()}", "session=garbage-from-a-parent-domain"
    header = f"{ours}; {foreign}" if order == "ours first" else f"{foreign}; {ours}"
    browser.forget_cookies()
    assert browser(read_session, extra_environ={"HTTP_COOKIE": header}) == (False, {"user": "ada"})


@pytest.mark.parametrize("order", ["newest first", "newest last"])
def test_of_two_genuine_values_the_newest_wins(settings: dict[str, Any], order: str) -> None:
    browser = Browser(**settings)
    with time_machine.travel(1_900_000_000, tick=True) as clock:
        browser(lambda h: h.session.__setitem__("user", "old"))
        old = browser.cookie()
        browser.forget_cookies()
        clock.shift(5)
        browser(lambda h: h.session.__setitem__("user", "new"))
        new = browser.cookie()
        pair = [f"session={new}", f"session={old}"]
        header = "; ".join(pair if order == "newest first" else pair[::-1])
        browser.forget_cookies()
        read = browser(read_session, extra_environ={"HTTP_COOKIE": header})
    assert read == (False, {"user": "new"})


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_an_id_with_a_trailing_newline_is_never_looked_up(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser(**backend_settings(backend, request, tmp_path))
    browser(lambda h: h.session.__setitem__("user", "ada"))
    caplog.set_level(logging.WARNING)
    plant_session_id(browser, "A" * 43 + "\n")
    assert browser(read_session) == (True, {})
    assert any("malformed session id" in r.getMessage() for r in security_lines(caplog))


BAD_VALUES = {
    "lone surrogate": "\ud800",
    "surrogate in a key": {"\udfff": 1},
    "integer over the digit limit": 10**5000,
    "NaN": float("nan"),
    "infinity": float("-inf"),
    "nesting past the limit": [[[[]]]],
    "deep nesting": [],
    "tuple": (1, 2),
    "integer key": {1: "a"},
    "set": {1},
}


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("case", BAD_VALUES)
def test_a_value_that_would_not_read_back_is_refused_on_assignment(case: str) -> None:
    value = BAD_VALUES[case]
    if case == "nesting past the limit":
        value = nested(MAX_DEPTH + 1)
    elif case == "deep nesting":
        value = nested(100_000)
    browser = Browser()

    def assign(h: Any) -> str:
        with pytest.raises(SerializationError) as refused:
            h.session["bad"] = value
        with pytest.raises(SerializationError):
            h.session.add_flash(value)
        return str(refused.value.key)

    assert browser(assign) == "bad"


def test_the_deepest_allowed_value_round_trips(settings: dict[str, Any]) -> None:
    browser = Browser(**settings)
    deepest = nested(MAX_DEPTH - 1)
    browser(lambda h: h.session.__setitem__("deep", deepest))
    assert browser(lambda h: h.session["deep"]) == deepest


@pytest.mark.parametrize("case", ["lone surrogate", "integer over the digit limit", "NaN"])
def test_a_value_mutated_into_one_that_would_not_read_back_fails_at_save(
    settings: dict[str, Any], case: str
) -> None:
    browser = Browser(**settings)
    browser(lambda h: h.session.__setitem__("cart", []))
    error = browser.fail(lambda h: h.session["cart"].append(BAD_VALUES[case]))
    assert isinstance(error, SerializationError)
    assert error.key == "cart"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_property_the_record_decoder_fails_only_with_value_error(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        Record.from_json(raw)
    with contextlib.suppress(ValueError):
        decode_json(raw)


KEYS = Keyring([SECRET])


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_property_any_cookie_value_unsigns_or_is_a_bad_cookie(value: str) -> None:
    for reader in (KEYS.unsign, KEYS.decrypt):
        with contextlib.suppress(BadCookie):
            reader("session", value, 60)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    ).map(lambda obj: repr(obj).encode()),
    kind=st.sampled_from([2, 3]),
)
def test_property_any_genuinely_signed_payload_is_a_session_or_a_new_one(
    payload: bytes, kind: int
) -> None:
    if kind == 3:
        payload = zlib.compress(payload)
    value = forge(KEYS, "session", payload, issued=now_ms())
    browser = property_browser()
    browser.set_cookie("session", value)
    _new, data = browser(read_session)
    assert isinstance(data, dict)


_BROWSERS: dict[str, Browser] = {}


def property_browser() -> Browser:
    if "b" not in _BROWSERS:
        _BROWSERS["b"] = Browser()
    return _BROWSERS["b"]


@settings(max_examples=200, deadline=None)
@given(header=st.text(alphabet=st.characters(max_codepoint=255), max_size=300))
def test_property_any_cookie_header_gives_a_page(header: str) -> None:
    browser = property_browser()
    browser.forget_cookies()
    new, data = browser(read_session, extra_environ={"HTTP_COOKIE": header})
    assert new and data == {}


def test_the_key_derivation_is_bound_to_the_name() -> None:
    keys = Keyring([SECRET])
    assert keys.signing_keys("a") != keys.signing_keys("b")
    assert (
        keys.signing_keys("a")[0]
        == hmac.new(SECRET.encode(), b"tipsessions.cookie:a", hashlib.sha256).digest()
    )
