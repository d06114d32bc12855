"""Cookies: signing, encryption, rotation, bad input, attributes and buffering.

A cookie is attacker-controlled input. Whatever arrives -- tampered,
truncated, expired, signed for another name, garbage -- reads as a new empty
session, is logged once without its value, and never raises.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from itsdangerous.signer import Signer

from tests.apps import SECRET, Browser
from tipsessions import SerializationError, cookies
from tipsessions.cookies import BadCookie, Keyring
from tipsessions.runtime import Runtime

COOKIE_BACKENDS = ["securecookie", "encryptedcookie"]
NEW_SECRET = "new-secret-after-rotation-0123456789"
START = 1_900_000_000


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


def keyring(browser: Browser) -> Keyring:
    return Runtime.of(browser.app).keyring


def attributes(header: str) -> dict[str, Any]:
    """``Set-Cookie`` attributes by lower-case name; flags map to True."""
    found: dict[str, Any] = {}
    for part in header.split(";")[1:]:
        name, sep, value = part.strip().partition("=")
        found[name.lower()] = value if sep else True
    return found


def header_of(browser: Browser, name: str) -> str:
    (header,) = [h for h in browser.set_cookies() if h.startswith(f"{name}=")]
    return header


def expired(header: str) -> bool:
    return attributes(header).get("max-age") == "0"


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip_char(text: str, index: int) -> str:
    # A middle character: all six of its bits decode into the value.
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def open_cookie(keys: Keyring, backend: str, value: str) -> bytes:
    if backend == "securecookie":
        return keys.unsign("session", value, None)[0]
    return keys.decrypt("session", value, None)[0]


def seal(keys: Keyring, backend: str, payload: bytes, name: str = "session") -> str:
    if backend == "securecookie":
        return keys.sign(name, payload)
    return keys.encrypt(name, payload)


def secure_parts(browser: Browser) -> tuple[int, int, bytes, bytes]:
    """``(format, issued at in ms, payload, MAC)`` of the session cookie."""
    raw = unb64(browser.cookie() or "")
    return raw[0], int.from_bytes(raw[1:7], "big"), raw[7:-32], raw[-32:]


def test_securecookie_is_timestamped_in_ms_and_hmac_sha256_signed(
    clock: time_machine.Traveller,
) -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("a", 1))
    _, issued, _, signature = secure_parts(browser)
    assert START * 1000 <= issued < START * 1000 + 1000
    assert len(signature) == 32  # a SHA-256 digest
    assert open_cookie(keyring(browser), "securecookie", browser.cookie() or "")


def test_securecookie_is_one_base64_string() -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("a", 1))
    assert re.fullmatch(r"[A-Za-z0-9_-]+", browser.cookie() or "")


def test_securecookie_payload_is_compact_json() -> None:
    browser = Browser()
    browser(lambda h: h.session.update(a=1, b=[1, 2], c={"d": None}))
    payload = secure_parts(browser)[2]
    assert b'"a":1,"b":[1,2],"c":{"d":null}' in payload
    assert b", " not in payload and b": " not in payload


def test_securecookie_compresses_a_payload_only_when_it_would_not_fit() -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("text", "spam " * 800))
    assert len(browser.cookie() or "") < 300
    assert browser(lambda h: h.session["text"]) == "spam " * 800
    browser(lambda h: h.session.__setitem__("text", "spam " * 400))
    assert b"spam spam" in secure_parts(browser)[2]


@pytest.mark.parametrize(
    "value",
    # ~90 random bytes: long enough to try zlib, too short for it to win.
    ["tiny", secrets.token_urlsafe(45)],
    ids=["tiny", "random"],
)
def test_securecookie_leaves_a_payload_zlib_cannot_shrink_uncompressed(value: str) -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("v", value))
    payload = secure_parts(browser)[2]  # the JSON itself
    assert f'"v":"{value}"'.encode() in payload


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_value_copied_under_another_cookie_name_does_not_verify(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    browser.set_cookie("admin", browser.cookie() or "")

    def read_copy(h: Any) -> tuple[bool, dict[str, Any]]:
        copy = h.session_store.get_session("admin", backend=backend)
        return copy.new, dict(copy)

    assert browser(read_copy) == (True, {})


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_rotated_keys_read_old_cookies_and_rewrite_them_with_the_first_key(
    backend: str,
) -> None:
    before = Browser(default_backend=backend)
    before(lambda h: h.session.__setitem__("user", "ada"))
    old_value = before.cookie() or ""

    rotated = Browser(default_backend=backend, secret_key=[NEW_SECRET, SECRET])
    rotated.set_cookie("session", old_value)
    assert rotated(lambda h: h.session["user"]) == "ada"  # every key verifies
    rotated(lambda h: h.session.__setitem__("visits", 1))
    new_value = rotated.cookie() or ""

    assert open_cookie(Keyring([NEW_SECRET]), backend, new_value)  # the first key signs
    with pytest.raises(BadCookie):
        open_cookie(Keyring([SECRET]), backend, new_value)
    assert rotated(lambda h: dict(h.session)) == {"user": "ada", "visits": 1}


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_a_retired_key_no_longer_verifies(backend: str) -> None:
    before = Browser(default_backend=backend)
    before(lambda h: h.session.__setitem__("user", "ada"))
    after = Browser(default_backend=backend, secret_key=NEW_SECRET)
    after.set_cookie("session", before.cookie() or "")
    assert after(lambda h: (h.session.new, dict(h.session))) == (True, {})


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_keyring_is_built_once_per_application(backend: str) -> None:
    browser = Browser(default_backend=backend)
    seen = [
        browser(lambda h: (h.session.__setitem__("n", 1), h.session_store.runtime)[1])
        for _ in range(3)
    ]
    assert seen[0] is seen[1] is seen[2] is Runtime.of(browser.app)
    assert seen[0].keyring is seen[2].keyring


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_keys_are_derived_once_not_per_request(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    derivations: list[object] = []

    def counting(original: Callable[..., Any]) -> Callable[..., Any]:
        def derive(*args: Any) -> Any:
            derivations.append(args)
            return original(*args)

        return derive

    # HKDF for the encryption and id keys, itsdangerous' own for signing keys.
    monkeypatch.setattr(cookies, "_derive", counting(cookies._derive))
    monkeypatch.setattr(Signer, "derive_key", counting(Signer.derive_key))
    browser = Browser(default_backend=backend, secret_key=[NEW_SECRET, SECRET])
    browser(lambda h: h.session.__setitem__("n", 0))
    browser(lambda h: h.session["n"])
    after_first_round_trip = len(derivations)
    for n in range(1, 4):
        browser(lambda h, n=n: h.session.__setitem__("n", n))
        assert browser(lambda h: h.session["n"]) == n
    assert after_first_round_trip > 0
    assert len(derivations) == after_first_round_trip


def test_encryptedcookie_hides_even_a_compressible_value() -> None:
    browser = Browser(default_backend="encryptedcookie")
    browser(lambda h: h.session.__setitem__("note", "plaintext-marker " * 20))
    raw = unb64(browser.cookie() or "")
    assert b"plaintext-marker" not in raw
    assert b"note" not in raw


def test_encryptedcookie_rejects_every_single_bit_flip() -> None:
    keys = Keyring([SECRET])
    value = keys.encrypt("session", b'{"d":{"a":1},"c":0}')
    raw = unb64(value)
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BadCookie):
            keys.decrypt("session", b64(bytes(flipped)), None)


def secure_flip_payload(value: str, keys: Keyring) -> str:
    return flip_char(value, len(value.rsplit(".", 2)[0]) // 2)


def secure_flip_signature(value: str, keys: Keyring) -> str:
    return flip_char(value, len(value) - 20)


def encrypted_flip_bit(position: int) -> Callable[[str, Keyring], str]:
    def flip(value: str, keys: Keyring) -> str:
        raw = bytearray(unb64(value))
        raw[position] ^= 0x01
        return b64(bytes(raw))

    return flip


def signed(backend: str, payload: bytes) -> Callable[[str, Keyring], str]:
    return lambda value, keys: seal(keys, backend, payload)


def truncated(value: str, keys: Keyring) -> str:
    return value[: len(value) // 2]


def garbage(value: str, keys: Keyring) -> str:
    return "bm90IGEgY29va2ll.garbage.value"


BAD_COOKIES: dict[str, tuple[str, Callable[[str, Keyring], str]]] = {
    "securecookie payload flipped": ("securecookie", secure_flip_payload),
    "securecookie signature flipped": ("securecookie", secure_flip_signature),
    "securecookie truncated": ("securecookie", truncated),
    "securecookie garbage": ("securecookie", garbage),
    "securecookie signed list": ("securecookie", signed("securecookie", b"[1,2]")),
    "securecookie signed string": ("securecookie", signed("securecookie", b'"ada"')),
    "securecookie signed number": ("securecookie", signed("securecookie", b"42")),
    "securecookie signed dict of no session": ("securecookie", signed("securecookie", b"{}")),
    "securecookie signed non-JSON": ("securecookie", signed("securecookie", b"\xff{")),
    "encryptedcookie version flipped": ("encryptedcookie", encrypted_flip_bit(0)),
    "encryptedcookie time flipped": ("encryptedcookie", encrypted_flip_bit(8)),
    "encryptedcookie nonce flipped": ("encryptedcookie", encrypted_flip_bit(12)),
    "encryptedcookie ciphertext flipped": ("encryptedcookie", encrypted_flip_bit(25)),
    "encryptedcookie tag flipped": ("encryptedcookie", encrypted_flip_bit(-1)),
    "encryptedcookie truncated": ("encryptedcookie", truncated),
    "encryptedcookie garbage": ("encryptedcookie", garbage),
    "encryptedcookie sealed list": ("encryptedcookie", signed("encryptedcookie", b"[1,2]")),
    "encryptedcookie sealed string": ("encryptedcookie", signed("encryptedcookie", b'"ada"')),
    "encryptedcookie sealed non-JSON": ("encryptedcookie", signed("encryptedcookie", b"\xff{")),
}


def security_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tipsessions.security"]


def assert_not_logged(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    everything = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for text in texts:
        assert text not in everything


@pytest.mark.parametrize(("backend", "spoil"), BAD_COOKIES.values(), ids=BAD_COOKIES.keys())
def test_bad_cookie_is_a_new_session_logged_once_without_its_value(
    backend: str,
    spoil: Callable[[str, Keyring], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = Browser(default_backend=backend)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    bad = spoil(browser.cookie() or "", keyring(browser))
    browser.set_cookie("session", bad)
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})

    (warning,) = security_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert_not_logged(caplog, bad, SECRET)


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_expired_cookie_is_a_new_session_logged_once(
    backend: str, clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(default_backend=backend, session_max_age=100)
    browser(lambda h: h.session.__setitem__("user", "ada"))
    value = browser.cookie() or ""
    clock.shift(101)
    caplog.set_level(logging.DEBUG)
    assert browser(lambda h: (h.session.new, dict(h.session))) == (True, {})
    (warning,) = security_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert_not_logged(caplog, value, SECRET)


@pytest.mark.parametrize("backend", COOKIE_BACKENDS)
def test_a_new_session_replaces_a_bad_cookie(backend: str) -> None:
    browser = Browser(default_backend=backend)
    browser.set_cookie("session", "garbage")
    browser(lambda h: h.session.__setitem__("a", 1))
    assert browser(lambda h: h.session["a"]) == 1


def test_a_whole_bad_cookie_flow_logs_no_secret_and_no_cookie_value(
    caplog: pytest.LogCaptureFixture, clock: time_machine.Traveller
) -> None:
    caplog.set_level(logging.DEBUG)
    browser = Browser(session_max_age=100)
    values: list[str] = []

    def write_all(h: Any) -> None:
        store = h.session_store
        h.session["user"] = "ada"
        store.get_session("vault", backend="encryptedcookie")["pin"] = "1234"
        store.get_session("cart", backend="memory")["items"] = [1]
        store.set_secure_cookie("prefs", {"theme": "dark"})

    def read_all(h: Any) -> None:
        store = h.session_store
        dict(h.session)
        dict(store.get_session("vault", backend="encryptedcookie"))
        dict(store.get_session("cart", backend="memory"))
        store.get_secure_cookie("prefs")

    browser(write_all)
    values += [browser.cookie(name) or "" for name in ("session", "vault", "cart", "prefs")]
    for name in ("session", "vault", "cart", "prefs"):  # tampered
        browser.set_cookie(name, flip_char(browser.cookie(name) or "", 10))
        values.append(browser.cookie(name) or "")
    browser(read_all)
    browser.forget_cookies()
    browser(write_all)
    values += [browser.cookie(name) or "" for name in ("session", "vault", "cart", "prefs")]
    clock.shift(101)  # expired
    browser(read_all)

    assert len(security_warnings(caplog)) == 8
    assert_not_logged(caplog, SECRET, *values)


DEFAULT_ATTRIBUTES = {"httponly": True, "samesite": "Lax", "path": "/"}

WRITES: dict[str, Callable[[Any], Any]] = {
    "session set": lambda h: h.session.__setitem__("a", 1),
    "session deleted": lambda h: h.session.invalidate(),
    "set_cookie": lambda h: h.session_store.set_cookie("session", "v"),
    "delete_cookie": lambda h: h.session_store.delete_cookie("session"),
    "set_secure_cookie": lambda h: h.session_store.set_secure_cookie("session", {"a": 1}),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_set_cookie_has_the_default_attributes(write: Callable[[Any], Any]) -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("a", 1))  # so that a delete has a cookie to expire
    browser(write)
    found = attributes(header_of(browser, "session"))
    assert {k: found.get(k) for k in DEFAULT_ATTRIBUTES} == DEFAULT_ATTRIBUTES
    assert "secure" not in found and "domain" not in found


COOKIE_ARGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "secure": ({"secure": True}, {"secure": True}),
    "domain": ({"domain": "example.com"}, {"domain": "example.com"}),
    "max_age": ({"max_age": 3600}, {"max-age": "3600"}),
    "samesite Strict": ({"samesite": "Strict"}, {"samesite": "Strict"}),
    "samesite None": ({"samesite": "None", "secure": True}, {"samesite": "None", "secure": True}),
    "no samesite": ({"samesite": None}, {"samesite": None}),
    "not httponly": ({"httponly": False}, {"httponly": None}),
    "path": ({"path": "/app"}, {"path": "/app"}),
}


@pytest.mark.parametrize(("args", "expected"), COOKIE_ARGS.values(), ids=COOKIE_ARGS.keys())
def test_cookie_args_from_the_config(args: dict[str, Any], expected: dict[str, Any]) -> None:
    browser = Browser(cookie_args=args)
    browser(lambda h: h.session.__setitem__("a", 1), path="/app/page")
    found = attributes(header_of(browser, "session"))
    assert {k: found.get(k) for k in expected} == expected


@pytest.mark.parametrize(("args", "expected"), COOKIE_ARGS.values(), ids=COOKIE_ARGS.keys())
def test_cookie_args_per_session(args: dict[str, Any], expected: dict[str, Any]) -> None:
    browser = Browser()

    def two_sessions(h: Any) -> None:
        h.session["a"] = 1
        h.session_store.get_session("other", cookie_args=args)["b"] = 2

    browser(two_sessions, path="/app/page")
    found = attributes(header_of(browser, "other"))
    assert {k: found.get(k) for k in expected} == expected
    assert attributes(header_of(browser, "session")) == DEFAULT_ATTRIBUTES  # untouched


@pytest.mark.parametrize(("args", "expected"), COOKIE_ARGS.values(), ids=COOKIE_ARGS.keys())
def test_cookie_args_of_set_cookie(args: dict[str, Any], expected: dict[str, Any]) -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_cookie("plain", "v", **args))
    found = attributes(header_of(browser, "plain"))
    assert {k: found.get(k) for k in expected} == expected


def test_cookie_max_age_from_config_applies_to_session_cookies() -> None:
    browser = Browser(cookie_args={"max_age": 600})
    browser(lambda h: h.session.__setitem__("a", 1))
    assert attributes(header_of(browser, "session"))["max-age"] == "600"


def test_cookies_wait_in_the_buffer_until_the_response_is_written() -> None:
    browser = Browser()

    def set_and_look(h: Any) -> list[str]:
        h.session_store.set_cookie("plain", "v")
        h.session["a"] = 1
        return h.response.headers.getall("Set-Cookie")

    assert browser(set_and_look) == []
    assert sorted(h.split("=", 1)[0] for h in browser.set_cookies()) == ["plain", "session"]


LAST_CALL_WINS: dict[str, tuple[Callable[[Any], Any], Callable[[str], bool]]] = {
    "set then set": (
        lambda s: (s.set_cookie("c", "1"), s.set_cookie("c", "2")),
        lambda header: header.startswith("c=2;"),
    ),
    "set then delete": (
        lambda s: (s.set_cookie("c", "1"), s.delete_cookie("c")),
        expired,
    ),
    "delete then set": (
        lambda s: (s.delete_cookie("c"), s.set_cookie("c", "3")),
        lambda header: header.startswith("c=3;") and not expired(header),
    ),
    "secure then plain": (
        lambda s: (s.set_secure_cookie("c", {"a": 1}), s.set_cookie("c", "4")),
        lambda header: header.startswith("c=4;"),
    ),
}


@pytest.mark.parametrize(("calls", "check"), LAST_CALL_WINS.values(), ids=LAST_CALL_WINS.keys())
def test_last_call_for_a_cookie_name_wins(
    calls: Callable[[Any], Any], check: Callable[[str], bool]
) -> None:
    browser = Browser()
    browser(lambda h: calls(h.session_store))
    (header,) = browser.set_cookies()
    assert check(header)


def test_set_cookie_rejects_a_non_string_value() -> None:
    browser = Browser()

    def bad(h: Any) -> None:
        with pytest.raises(TypeError):
            h.session_store.set_cookie("n", 1)

    browser(bad)


def test_reading_a_session_adds_vary_cookie_and_sets_no_cookie() -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("a", 1))
    browser(lambda h: h.session.get("a"))
    assert browser.set_cookies() == []
    assert "Cookie" in browser.response.headers["Vary"]
    assert "private" not in browser.response.headers.get("Cache-Control", "")


def test_vary_cookie_keeps_the_handlers_vary() -> None:
    browser = Browser()

    def vary(h: Any) -> None:
        h.response.vary = ("Accept-Encoding",)
        h.session.get("a")

    browser(vary)
    assert [v.strip() for v in browser.response.headers["Vary"].split(",")] == [
        "Accept-Encoding",
        "Cookie",
    ]


@pytest.mark.parametrize(
    "write",
    [lambda h: h.session.__setitem__("b", 2), lambda h: h.session.invalidate()],
    ids=["set", "deleted"],
)
def test_setting_or_deleting_a_session_cookie_makes_the_response_private(
    write: Callable[[Any], Any],
) -> None:
    browser = Browser()
    browser(lambda h: h.session.__setitem__("a", 1))
    browser(write)
    assert browser.set_cookies()
    assert "private" in browser.response.headers["Cache-Control"]
    assert "public" not in browser.response.headers["Cache-Control"]


def test_a_public_response_turns_private_when_it_sets_a_cookie() -> None:
    browser = Browser()

    def public(h: Any) -> None:
        h.response.cache_control.public = True
        h.session["a"] = 1

    browser(public)
    assert "public" not in browser.response.headers["Cache-Control"]
    assert "private" in browser.response.headers["Cache-Control"]


def test_secure_cookie_round_trip() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"theme": "dark", "n": [1]}))
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs")) == {
        "theme": "dark",
        "n": [1],
    }


def test_secure_cookie_absent_is_none() -> None:
    browser = Browser()
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs")) is None


def test_secure_cookie_tampered_is_none() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"theme": "dark"}))
    browser.set_cookie("prefs", flip_char(browser.cookie("prefs") or "", 5))
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs")) is None


def test_secure_cookie_under_another_name_is_none() -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"theme": "dark"}))
    browser.set_cookie("admin", browser.cookie("prefs") or "")
    assert browser(lambda h: h.session_store.get_secure_cookie("admin")) is None


def test_secure_cookie_of_a_signed_non_dict_is_none() -> None:
    browser = Browser()
    browser()
    browser.set_cookie("prefs", keyring(browser).sign("prefs", b"[1,2]"))
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs")) is None


def test_secure_cookie_expires_after_max_age(clock: time_machine.Traveller) -> None:
    browser = Browser()
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"a": 1}))
    clock.shift(11)
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs", max_age=20)) == {"a": 1}
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs", max_age=10)) is None


def test_secure_cookie_max_age_defaults_to_session_max_age(
    clock: time_machine.Traveller,
) -> None:
    browser = Browser(session_max_age=10)
    browser(lambda h: h.session_store.set_secure_cookie("prefs", {"a": 1}))
    clock.shift(11)
    assert browser(lambda h: h.session_store.get_secure_cookie("prefs")) is None


@pytest.mark.parametrize(
    ("value", "error"),
    [(["not", "a", "dict"], TypeError), ({"when": {1, 2}}, SerializationError)],
    ids=["list", "set inside"],
)
def test_set_secure_cookie_takes_a_json_dict(value: Any, error: type[Exception]) -> None:
    browser = Browser()

    def bad(h: Any) -> None:
        with pytest.raises(error):
            h.session_store.set_secure_cookie("prefs", value)

    browser(bad)
