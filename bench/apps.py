"""The WSGI applications under test: one per session library and backend, and the bare frameworks.

Every application serves the same four pages, so that the bare framework's
time for a page is exactly what the session library adds to:

* ``/untouched`` answers without looking at the session;
* ``/read`` reads one value (``user_id``) and answers with it;
* ``/write`` reads and changes one value, so the session must be saved;
* ``/seed/<size>`` fills a fresh session with a payload from ``payloads``.

Each library is used the way its documentation shows; nothing is tuned.
The "bound" tipsessions rows sign the seeded session in with ``set_user()``
(a fresh user each time, the registry on Redis), so they price what a
signed-in session adds: the registry check, at most once per
``check_interval`` per process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import webapp2

from .payloads import PAYLOADS, SECRET

WSGIApp = Callable[..., Any]

# What the bare frameworks "read": the pages do the same dict work as the
# session pages, minus the session.
_NO_SESSION: dict[str, Any] = {"user_id": 42}


@dataclass(frozen=True)
class Context:
    """Where the server backends are, and a tag that keeps this process's keys apart."""

    memcached: str = ""
    redis_url: str = ""
    file_dir: str = ""
    tag: str = "http"

    @property
    def prefix(self) -> str:
        return f"bench-{self.tag}:"


class Pages:
    """The four pages, for any webapp2 handler that can hand out its session as a dict."""

    request: webapp2.Request
    response: Any

    def current(self) -> MutableMapping[str, Any]:
        return _NO_SESSION

    def changed(self, session: MutableMapping[str, Any]) -> None:
        """Called after a page changed the session (Beaker saves only when asked)."""

    def untouched(self) -> None:
        self.response.write("ok")

    def read(self) -> None:
        self.response.write(str(self.current()["user_id"]))

    def write(self) -> None:
        session = self.current()
        session["visits"] = session.get("visits", 0) + 1
        self.changed(session)
        self.response.write("ok")

    def seed(self, size: str) -> None:
        session = self.current()
        session.update(PAYLOADS[size])
        self.changed(session)
        self.response.write("ok")


def _webapp2_app(handler: type, config: dict[str, Any] | None = None) -> WSGIApp:
    routes = [
        webapp2.Route(f"/{page}", handler, handler_method=page)
        for page in ("untouched", "read", "write")
    ]
    routes.append(webapp2.Route("/seed/<size>", handler, handler_method="seed"))
    app: WSGIApp = webapp2.WSGIApplication(routes, config=config or {})
    return app


class BareHandler(Pages, webapp2.RequestHandler):  # type: ignore[misc]
    pass


def bare_webapp2(context: Context) -> WSGIApp:
    return _webapp2_app(BareHandler)


def _tipsessions_handler() -> type:
    # Imported here: a worker measuring another revision puts that revision
    # on sys.path first, before anything imports tipsessions.
    import tipsessions

    class TipHandler(Pages, tipsessions.BaseHandler):
        def current(self) -> MutableMapping[str, Any]:
            return self.session

    return TipHandler


def tipsessions_settings(backend: str, context: Context) -> dict[str, Any]:
    """The configuration a user of ``backend`` would write, pointed at the bench's servers."""
    settings: dict[str, Any] = {"secret_key": SECRET, "default_backend": backend}
    if backend == "memcache":
        settings["memcache"] = {"servers": [context.memcached], "prefix": context.prefix}
    elif backend == "redis":
        settings["redis"] = {"url": context.redis_url, "prefix": context.prefix}
    elif backend == "file":
        settings["file"] = {"path": context.file_dir}
    elif backend == "datastore":
        settings["datastore"] = {"namespace": f"bench-{context.tag}"}
    return settings


def tipsessions_app(backend: str) -> Callable[[Context], WSGIApp]:
    def build(context: Context) -> WSGIApp:
        config = {"tipsessions": tipsessions_settings(backend, context)}
        return _webapp2_app(_tipsessions_handler(), config)

    return build


def _bound_handler() -> type:
    base = _tipsessions_handler()

    class BoundHandler(base):  # type: ignore[misc, valid-type]
        def seed(self, size: str) -> None:
            self.session.set_user(f"bench-{secrets.token_hex(6)}")
            super().seed(size)

    return BoundHandler


def tipsessions_bound_app(backend: str) -> Callable[[Context], WSGIApp]:
    def build(context: Context) -> WSGIApp:
        settings = tipsessions_settings(backend, context)
        settings["redis"] = {"url": context.redis_url, "prefix": context.prefix}
        settings["users"] = {"backend": "redis"}
        return _webapp2_app(_bound_handler(), {"tipsessions": settings})

    return build


def webapp2_extras_securecookie(context: Context) -> WSGIApp:
    from webapp2_extras import sessions

    class ExtrasHandler(Pages, webapp2.RequestHandler):  # type: ignore[misc]
        """The pattern webapp2_extras documents: a store per request, saved after dispatch."""

        def dispatch(self) -> None:
            self.session_store = sessions.get_store(request=self.request)
            try:
                super().dispatch()
            finally:
                self.session_store.save_sessions(self.response)

        def current(self) -> MutableMapping[str, Any]:
            return self.session_store.get_session()  # type: ignore[no-any-return]

    return _webapp2_app(ExtrasHandler, {"webapp2_extras.sessions": {"secret_key": SECRET}})


class BeakerHandler(Pages, webapp2.RequestHandler):  # type: ignore[misc]
    def current(self) -> MutableMapping[str, Any]:
        return self.request.environ["beaker.session"]  # type: ignore[no-any-return]

    def changed(self, session: MutableMapping[str, Any]) -> None:
        session.save()  # type: ignore[attr-defined]


def _beaker(options: dict[str, Any]) -> WSGIApp:
    from beaker.middleware import SessionMiddleware

    base = {"session.key": "beaker", "session.data_serializer": "json"}
    return SessionMiddleware(_webapp2_app(BeakerHandler), {**base, **options})  # type: ignore[no-any-return]


def beaker_cookie(context: Context) -> WSGIApp:
    return _beaker({"session.type": "cookie", "session.validate_key": SECRET})


def beaker_redis(context: Context) -> WSGIApp:
    return _beaker({"session.type": "ext:redis", "session.url": context.redis_url})


def _flask_app(current: Callable[[], MutableMapping[str, Any]]) -> Any:
    import flask

    app = flask.Flask("bench")

    @app.get("/untouched")
    def untouched() -> str:
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(current()["user_id"])

    @app.get("/write")
    def write() -> str:
        session = current()
        session["visits"] = session.get("visits", 0) + 1
        return "ok"

    @app.get("/seed/<size>")
    def seed(size: str) -> str:
        current().update(PAYLOADS[size])
        return "ok"

    return app


def bare_flask(context: Context) -> WSGIApp:
    return _flask_app(lambda: _NO_SESSION)  # type: ignore[no-any-return]


def flask_cookie(context: Context) -> WSGIApp:
    import flask

    app = _flask_app(lambda: flask.session)
    app.secret_key = SECRET
    return app  # type: ignore[no-any-return]


def flask_session_redis(context: Context) -> WSGIApp:
    import flask
    import redis
    from flask_session import Session

    app = _flask_app(lambda: flask.session)
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(context.redis_url),
        SESSION_KEY_PREFIX=f"flask-{context.prefix}",
    )
    Session(app)
    return app  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Variant:
    """One library set-up: how to build it and which bare framework it is measured over."""

    key: str
    label: str
    framework: str
    build: Callable[[Context], WSGIApp]


TIPSESSIONS_BACKENDS = (
    "securecookie",
    "encryptedcookie",
    "memory",
    "file",
    "memcache",
    "redis",
    "datastore",
)
SERVER_BACKENDS = ("memcache", "redis", "datastore")

BARE = {
    "webapp2": Variant("bare:webapp2", "bare webapp2", "webapp2", bare_webapp2),
    "flask": Variant("bare:flask", "bare Flask", "flask", bare_flask),
}

TIPSESSIONS = {
    f"ts:{backend}": Variant(
        f"ts:{backend}", f"tipsessions {backend}", "webapp2", tipsessions_app(backend)
    )
    for backend in TIPSESSIONS_BACKENDS
}

#: Measured in this checkout only: an older revision has no ``set_user()``.
BOUND = {
    f"ts:{backend}+user": Variant(
        f"ts:{backend}+user",
        f"tipsessions {backend}, bound",
        "webapp2",
        tipsessions_bound_app(backend),
    )
    for backend in ("securecookie", "redis")
}

PEERS = {
    variant.key: variant
    for variant in (
        Variant(
            "peer:webapp2_extras",
            "webapp2_extras securecookie",
            "webapp2",
            webapp2_extras_securecookie,
        ),
        Variant("peer:flask", "Flask cookie session", "flask", flask_cookie),
        Variant("peer:beaker-cookie", "Beaker cookie", "webapp2", beaker_cookie),
        Variant("peer:beaker-redis", "Beaker ext:redis", "webapp2", beaker_redis),
        Variant("peer:flask-session-redis", "Flask-Session redis", "flask", flask_session_redis),
    )
}

VARIANTS: dict[str, Variant] = {
    **{variant.key: variant for variant in BARE.values()},
    **TIPSESSIONS,
    **BOUND,
    **PEERS,
}


def http_app(key: str) -> WSGIApp:
    """An app for gunicorn: ``bench.apps:http_app('ts:securecookie')`` (cookie variants only)."""
    return VARIANTS[key].build(Context())
