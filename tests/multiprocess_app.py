"""The app that real app server processes serve in the multi-process tests.

Each process reads its ``config["tipsessions"]`` from the JSON file named by
the ``TIPSESS_APP_CONFIG`` environment variable, as a deployment reads its
settings. Every configured backend is served under its own path with its
own cookie (``s-<backend>``), so one pair of processes serves them all:

* ``/<backend>/count`` adds one to the session's counter ``n`` and returns it;
* ``/<backend>/write/<key>`` stores ``1`` under ``key``;
* ``/<backend>/read`` returns the session as JSON, with ``new``;
* ``/<backend>/signin/<user>`` signs ``user`` in there (``set_user()``);
* ``/<backend>/revoke`` signs that user out everywhere, ``?keep=1`` all but here;
* ``/users/<user>`` lists the user's live sessions;
* ``/clock/<seconds>`` moves this process's clock forward (time_machine),
  so that a ``check_interval`` passes without waiting for it.

A failing request answers 503 for :class:`~tipsessions.BackendUnavailable`
and 500 for anything else, with the exception's class name first in the
body, so a client can tell a typed error from a crash.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import webapp2

from tests.servers import APP_CONFIG_ENV
from tipsessions import BackendUnavailable, BaseHandler, Session


class _Handler(BaseHandler):
    def session_on(self, backend: str) -> Session:
        return self.session_store.get_session(f"s-{backend}", backend=backend)

    def reply(self, value: Any) -> None:
        self.response.content_type = "application/json"
        self.response.write(json.dumps(value))


class Count(_Handler):
    def get(self, backend: str) -> None:
        session = self.session_on(backend)
        session["n"] = session.get("n", 0) + 1
        self.reply({"n": session["n"], "pid": os.getpid()})


class Write(_Handler):
    def get(self, backend: str, key: str) -> None:
        self.session_on(backend)[key] = 1
        self.reply({"ok": True})


class Read(_Handler):
    def get(self, backend: str) -> None:
        session = self.session_on(backend)
        self.reply({"new": session.new, "data": dict(session)})


class SignIn(_Handler):
    def get(self, backend: str, user: str) -> None:
        session = self.session_on(backend)
        session.regenerate_id()
        session.set_user(user)
        session["user"] = user
        self.reply({"ok": True})


class Revoke(_Handler):
    def get(self, backend: str) -> None:
        user = self.session_on(backend).user_id
        keep = self.request.GET.get("keep") == "1"
        ended = self.session_store.revoke_user(user, keep_current=keep) if user else 0
        self.reply({"ended": ended})


class Sessions(_Handler):
    def get(self, user: str) -> None:
        self.reply([vars(found) for found in self.session_store.user_sessions(user)])


_clock: list[Any] = []


class Clock(webapp2.RequestHandler):
    def get(self, seconds: str) -> None:
        import time_machine

        destination = time.time() + float(seconds)
        for traveller in _clock:
            traveller.stop()
        _clock[:] = [time_machine.travel(destination, tick=True)]
        _clock[0].start()
        self.response.write("ok")


class Ping(webapp2.RequestHandler):
    def get(self) -> None:
        self.response.write("ok")


def failed(request: webapp2.Request, response: webapp2.Response, error: Exception) -> None:
    response.set_status(503 if isinstance(error, BackendUnavailable) else 500)
    response.content_type = "text/plain"
    response.write(f"{type(error).__name__}: {error}")


app = webapp2.WSGIApplication(
    [
        webapp2.Route("/ping", Ping),
        webapp2.Route("/<backend>/count", Count),
        webapp2.Route("/<backend>/write/<key>", Write),
        webapp2.Route("/<backend>/read", Read),
        webapp2.Route("/<backend>/signin/<user>", SignIn),
        webapp2.Route("/<backend>/revoke", Revoke),
        webapp2.Route("/users/<user>", Sessions),
        webapp2.Route("/clock/<seconds>", Clock),
    ],
    config={"tipsessions": json.loads(Path(os.environ[APP_CONFIG_ENV]).read_text())},
)
app.error_handlers[500] = failed
