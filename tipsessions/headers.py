"""The HTTP side of a request's sessions: our cookies in, headers out.

Both directions run on every request that touches a session, so both avoid
WebOb's general machinery:

* **In.** Only our own cookie names are looked up, straight in the raw
  ``Cookie`` header. The rest of the header belongs to other applications
  and may hold anything (a quoted byte over 0x7F makes WebOb's full parse
  raise): it is never decoded or unquoted, and a header of any size is
  searched only up to :data:`MAX_HEADER_CHARS`.
* **Out.** Each ``Set-Cookie`` is the cookie's name and value followed by
  an attribute suffix that WebOb rendered once per set of attributes.
  ``Vary`` and ``Cache-Control`` are extended in place, without a parse and
  re-serialisation of what the application already set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any

from webob.cookies import make_cookie, serialize_cookie_date

security_log = logging.getLogger("tipsessions.security")

#: Most characters of the ``Cookie`` header searched for our cookies. Web
#: servers refuse far shorter headers (8 KB is usual), so only a hostile
#: client sends more, and it must not buy unbounded work with it.
MAX_HEADER_CHARS = 64 * 1024
#: Most values tried for one cookie name. Browsers send a name more than
#: once when cookies of several paths or domains match, most specific first.
MAX_SAME_NAME = 4

# Characters WebOb writes into a cookie value without quoting it.
_PLAIN_VALUE = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~!@#$%^&*()+=-`.?|:/{}<>'"
)
_DELETED_EXPIRES = "Wed, 31-Dec-97 23:59:59 GMT"


@lru_cache(maxsize=256)
def _finder(name: str) -> re.Pattern[str]:
    # The header is searched with ";" put in front, so every cookie starts
    # after a ";" and the pattern begins with a literal the engine skips to.
    return re.compile(";[ \t]*" + re.escape(name) + "=([^;]*)")


def cookie_values(environ: Mapping[str, Any], name: str) -> list[str]:
    """The values sent for cookie ``name``, in header order, at most :data:`MAX_SAME_NAME`.

    Callers try them in turn and keep the first that verifies, so a stale or
    foreign cookie of the same name (from a parent domain, say) neither
    hides a valid one nor locks its owner out.
    """
    header = environ.get("HTTP_COOKIE")
    if not header:
        return []
    if len(header) > MAX_HEADER_CHARS:
        security_log.warning(
            "a Cookie header of %d characters; only the first %d are searched",
            len(header),
            MAX_HEADER_CHARS,
        )
        header = header[:MAX_HEADER_CHARS]
    values = []
    for match in _finder(name).finditer(";" + header):
        value = match.group(1).strip(" \t")
        if len(value) > 1 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values.append(value)
        if len(values) == MAX_SAME_NAME:
            break
    return values


def _plain(value: str) -> bool:
    return value.isascii() and not value.encode("ascii").translate(None, _PLAIN_VALUE)


def _attribute_key(args: Mapping[str, Any]) -> tuple[Any, ...]:
    return (args["path"], args["domain"], args["secure"], args["httponly"], args["samesite"])


@lru_cache(maxsize=256)
def _suffixes(path: str | None, domain: str | None, *flags: Any) -> tuple[str, str, str]:
    """``(before Max-Age, Path, after expires)``, as WebOb renders them."""
    secure, httponly, samesite = flags
    rendered = make_cookie(
        "n", "v", path=path, domain=domain, secure=secure, httponly=httponly, samesite=samesite
    )
    # WebOb escapes ";" inside attribute values, so "; " only separates them.
    before, path_part, after = [], "", []
    for part in rendered.split("; ")[1:]:
        if part.startswith("Domain="):
            before.append(part)
        elif part.startswith("Path="):
            path_part = part
        else:
            after.append(part)
    join = "".join
    return (
        join("; " + p for p in before),
        "; " + path_part if path_part else "",
        join("; " + p for p in after),
    )


def set_cookie_header(name: str, value: str | None, args: Mapping[str, Any]) -> str:
    """The ``Set-Cookie`` value WebOb's ``set_cookie`` would write; ``None`` expires it."""
    max_age = args["max_age"]
    if value is not None and not _plain(value):
        return str(
            make_cookie(
                name,
                value,
                max_age=max_age,
                path=args["path"],
                domain=args["domain"],
                secure=args["secure"],
                httponly=args["httponly"],
                samesite=args["samesite"],
            )
        )
    before, path, after = _suffixes(*_attribute_key(args))
    if value is None:
        return f"{name}={before}; Max-Age=0{path}; expires={_DELETED_EXPIRES}{after}"
    if max_age is None:
        return f"{name}={value}{before}{path}{after}"
    expires = serialize_cookie_date(timedelta(seconds=max_age)).decode("ascii")
    return f"{name}={value}{before}; Max-Age={max_age}{path}; expires={expires}{after}"


#: What the store buffers: cookie name -> (value, or None to expire it; attributes).
CookieBuffer = Mapping[str, tuple[str | None, Mapping[str, Any]]]


def write_cookies(response: Any, cookies: CookieBuffer) -> None:
    """Add one ``Set-Cookie`` per cookie, replacing any earlier one of the same name."""
    headers: list[tuple[str, str]] = response.headerlist
    names = tuple(name + "=" for name in cookies)
    if any(k.lower() == "set-cookie" and v.startswith(names) for k, v in headers):
        headers[:] = [
            (k, v) for k, v in headers if not (k.lower() == "set-cookie" and v.startswith(names))
        ]
    headers.extend(
        ("Set-Cookie", set_cookie_header(name, value, args))
        for name, (value, args) in cookies.items()
    )


def _existing(
    response: Any, name: str, added: tuple[str, str]
) -> tuple[list[tuple[str, str]], int]:
    """The header list, and the index of the header ``name`` (lower case) in it.

    The index is -1 when there was no such header: ``added`` is then appended.
    """
    headers: list[tuple[str, str]] = response.headerlist
    for index, (key, _) in enumerate(headers):
        if key.lower() == name:
            return headers, index
    headers.append(added)
    return headers, -1


def add_vary_cookie(response: Any) -> None:
    """Vary on ``Cookie``: the body may depend on the session, which depends on it."""
    headers, index = _existing(response, "vary", ("Vary", "Cookie"))
    if index >= 0:
        key, value = headers[index]
        if "cookie" not in (token.strip().lower() for token in value.split(",")):
            headers[index] = (key, f"{value}, Cookie" if value.strip() else "Cookie")


def make_private(response: Any) -> None:
    """``Cache-Control: private``, dropping ``public``: no shared cache keeps a cookie."""
    headers, index = _existing(response, "cache-control", ("Cache-Control", "private"))
    if index < 0:
        return
    key, value = headers[index]
    if '"' in value:
        # Quoted field lists can hold commas: leave those to WebOb's parser.
        response.cache_control.public = False
        response.cache_control.private = True
        return
    tokens = [token.strip() for token in value.split(",") if token.strip()]
    kept = [t for t in tokens if t.partition("=")[0].strip().lower() not in ("public", "private")]
    headers[index] = (key, ", ".join([*kept, "private"]))
