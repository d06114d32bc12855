"""Helpers for an application's own tests.

For WebTest: :func:`session_transaction` puts data into a session before a request, and
:func:`stored_session` reads what the application stored, without going
through any page of the application::

    import webtest
    from tipsessions.testing import session_transaction, stored_session

    client = webtest.TestApp(app)
    with session_transaction(client) as session:
        session["user"] = "ada"             # signed in, without the sign-in form
    client.get("/cart/add?item=42")
    assert stored_session(client, "cart", backend="redis")["items"] == [42]

Both use the application's own configuration and backends, and the
client's cookie jar, so they work the same on every backend: for a cookie
session the jar receives the signed cookie, for a server-side one the data
goes to the server and the jar receives the id's cookie.

They open the session exactly as a request of that client would (its
cookies for the session's path, its ``extra_environ``), through a stand-in
WSGI application that shares the client's jar. That is why they need
WebTest (``pip install '.[testing]'``) and nothing private of WebTest.

For backend authors, :class:`BackendContract` is the suite every backend
passes, as a pytest test class to subclass (see
:mod:`tipsessions.conformance`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import webapp2
import webob

from .runtime import Runtime
from .session import Session
from .store import DEFAULT, SessionStore

try:
    import webtest

    from .conformance import BackendContract
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"tipsessions.testing needs WebTest, pytest and time-machine ({error.name} is "
        "missing): install tipsessions with its 'testing' extra (pip install "
        "'.[testing]' in a tipsessions checkout)"
    ) from error

__all__ = ["BackendContract", "session_transaction", "stored_session"]

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@contextmanager
def session_transaction(
    client: webtest.TestApp,
    name: str | None = None,
    *,
    backend: str | None = None,
    max_age: int | None = DEFAULT,
    cookie_args: Mapping[str, Any] | None = None,
    app: webapp2.WSGIApplication | None = None,
) -> Iterator[Session]:
    """Open a session of ``client`` to change it; it is saved when the block ends.

    The session is the one the client's next request would see: ``name``
    (default: the configured ``cookie_name``) on ``backend`` (default:
    ``default_backend``), with the ``max_age`` and ``cookie_args`` the
    application passes to ``get_session`` for it, if any. Everything a
    handler can do works (keys, flashes, ``set_max_age``,
    ``regenerate_id``, ``invalidate``); at the end of the block it is saved
    as after a request, and the cookie it sets lands in the client's jar.
    When the block raises, nothing is saved.

    ``app`` is needed only when ``client.app`` is not the
    ``webapp2.WSGIApplication`` itself (a WSGI middleware wraps it).
    """
    target = _application(client, app)
    store, session = _open(client, target, name, backend, max_age, cookie_args)
    yield session
    response = webob.Response()
    store.save_sessions(response)
    # The client "receives" that response, so its jar takes the cookies as
    # from any response of the application.
    _exchange(client, _path(target, cookie_args), response)


def stored_session(
    client: webtest.TestApp,
    name: str | None = None,
    *,
    backend: str | None = None,
    max_age: int | None = DEFAULT,
    cookie_args: Mapping[str, Any] | None = None,
    app: webapp2.WSGIApplication | None = None,
) -> Session:
    """The session the client's cookies lead to now, as its next request would load it.

    Call it after a response to see what the application stored. Arguments
    are those of :func:`session_transaction`. A client with no valid
    session gets a new, empty one (``.new`` is True). Nothing is saved:
    changes made to the returned session go nowhere; use
    :func:`session_transaction` to change it.
    """
    target = _application(client, app)
    return _open(client, target, name, backend, max_age, cookie_args)[1]


def _application(client: webtest.TestApp, app: webapp2.WSGIApplication | None) -> Any:
    target = app if app is not None else client.app
    if not isinstance(target, webapp2.WSGIApplication):
        raise TypeError(
            f"{type(target).__name__} is not a webapp2.WSGIApplication: pass the "
            "application as app=..."
        )
    return target


def _path(app: webapp2.WSGIApplication, cookie_args: Mapping[str, Any] | None) -> str:
    """A URL path the session's cookie is sent to, so that the jar sends it."""
    path = (cookie_args or {}).get("path") or Runtime.of(app).settings.cookie_args["path"]
    return str(path or "/")


def _open(
    client: webtest.TestApp,
    app: webapp2.WSGIApplication,
    name: str | None,
    backend: str | None,
    max_age: int | None,
    cookie_args: Mapping[str, Any] | None,
) -> tuple[SessionStore, Session]:
    opened: list[tuple[SessionStore, Session]] = []

    def load(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = app.request_class(environ)
        request.app = app
        store = SessionStore(request)
        opened.append((store, store.get_session(name, backend, max_age, cookie_args)))
        response: Iterable[bytes] = webob.Response()(environ, start_response)
        return response

    _exchange(client, _path(app, cookie_args), load)
    return opened[0]


def _exchange(client: webtest.TestApp, path: str, answer: _WSGIApp) -> None:
    """One request of ``client`` (its cookies, its environ) that ``answer`` serves."""
    stand_in = webtest.TestApp(
        answer, extra_environ=client.extra_environ, cookiejar=client.cookiejar
    )
    stand_in.get(path)
