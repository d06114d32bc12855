"""A coverage-guided fuzzer (atheris) for everything tipsessions decodes.

Run it through ``make fuzz`` (or ``python fuzz/run.py``), which installs
atheris, sets the time box and counts executions and crashes. Every input
is fed to one of the decoding paths, chosen by its first byte:

* a stored record (``Record.from_json``) and a Redis hash (``decode``),
  which may only give a record or raise ``ValueError``;
* a whole ``Cookie`` header, read by the cookie and server-side backends;
* payloads signed or encrypted with the application's real keys, so that
  what lies behind the signature check is reached too: any issue time,
  format byte, compressed or plain body, and any session id.

Those last three go through ``Backend.load``, which must never raise: any
exception escaping is a crash.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import atheris

from tipsessions import cookies, headers, record
from tipsessions.backends import redis as redis_backend
from tipsessions.config import load_settings
from tipsessions.store import Runtime

SECRET = "fuzzing-secret-0123456789abcdef"
NAME = "session"


def _runtime() -> Runtime:
    config = {
        "tipsessions": {
            "secret_key": SECRET,
            # Short limits, so that expiry checks run on decoded records too.
            "session_max_age": 3600,
            "session_absolute_max_age": 7200,
        }
    }
    return Runtime(load_settings(config))


RUNTIME = _runtime()
LIFETIME = RUNTIME.default_lifetime
SECURE = RUNTIME.backend("securecookie")
ENCRYPTED = RUNTIME.backend("encryptedcookie")
MEMORY = RUNTIME.backend("memory")
KEY = RUNTIME.keyring.signing_keys(NAME)[0]


def record_or_value_error(decode: Any, raw: Any) -> None:
    try:
        result = decode(raw)
    except ValueError:
        return
    if not isinstance(result, record.Record):
        raise AssertionError(f"decoded to {type(result).__name__}")


def signed(head: bytes) -> str:
    """``head`` (format byte, issue time, payload) signed as the application would."""
    return cookies._b64encode(head + cookies._HMAC.get_signature(KEY, head))


def one_input(data: bytes) -> None:
    if not data:
        return
    fuzz = atheris.FuzzedDataProvider(data[1:])
    mode = data[0] % 7
    if mode == 0:
        record_or_value_error(record.Record.from_json, fuzz.ConsumeBytes(len(data)))
    elif mode == 1:
        fields = {
            fuzz.ConsumeBytes(fuzz.ConsumeIntInRange(0, 8)): fuzz.ConsumeBytes(
                fuzz.ConsumeIntInRange(0, 64)
            )
            for _ in range(fuzz.ConsumeIntInRange(0, 6))
        }
        record_or_value_error(redis_backend.decode, fields)
    elif mode == 2:
        header = fuzz.ConsumeUnicodeNoSurrogates(len(data))
        values = headers.cookie_values({"HTTP_COOKIE": header}, NAME)
        for backend in (SECURE, ENCRYPTED, MEMORY):
            backend.load(NAME, values, LIFETIME)
    elif mode == 3:
        # Any format byte and issue time, then a payload: plain or zlib.
        SECURE.load(NAME, [signed(fuzz.ConsumeBytes(len(data)))], LIFETIME)
    elif mode == 4:
        head = bytes((3,)) + cookies.now_ms().to_bytes(6, "big")
        payload = fuzz.ConsumeBytes(len(data))
        SECURE.load(NAME, [signed(head + cookies.zlib.compress(payload))], LIFETIME)
        SECURE.load(NAME, [signed(bytes((2,)) + head[1:] + payload)], LIFETIME)
    elif mode == 5:
        ENCRYPTED.load(
            NAME, [RUNTIME.keyring.encrypt(NAME, fuzz.ConsumeBytes(len(data)))], LIFETIME
        )
    else:
        session_id = fuzz.ConsumeBytes(len(data))
        MEMORY.load(NAME, [RUNTIME.keyring.sign(NAME, session_id, compress=False)], LIFETIME)


def seeds() -> list[bytes]:
    """Valid inputs of each kind, for a corpus that starts empty."""
    body = record.Record(
        data={"user": "ada", "cart": [1, 2.5, {"k": None}]},
        flashes={"_flash": [["id", "saved", "info"]]},
        created=cookies.now_ms() / 1000,
        max_age=60,
    ).to_json()
    issued = cookies.now_ms().to_bytes(6, "big")
    return [
        b"\x00" + body,
        b"\x00" + record.Record(tombstone=True).to_json(),
        b"\x02" + f"other=1; {NAME}={SECURE.seal(NAME, body)}; x=2".encode(),
        b"\x03" + bytes((2,)) + issued + body,
        b"\x03" + bytes((3,)) + issued + cookies.zlib.compress(body),
        b"\x04" + body,
        b"\x05" + body,
        b"\x06" + b"A" * 43,
    ]


def main() -> None:
    if sys.argv[1:2] == ["--seeds"]:
        for number, seed in enumerate(seeds()):
            Path(sys.argv[2], f"seed-{number}").write_bytes(seed)
        return
    # Every rejected input logs a line; millions of them would drown the output.
    logging.disable(logging.CRITICAL)
    # Everything is imported: instrument this project's code and its libraries'.
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
