"""Request-cycle benchmark: tipsessions against webapp2_extras.sessions.

Run with ``make bench``. Both libraries serve the same handlers on the same
session payload, called as plain WSGI (no test-client overhead), and the
runs are interleaved so machine noise hits both alike. Reported: the median
time per request over the repeats and the ratio ours/peer (below 1 is
faster). Not a test: timings on a shared machine are never asserted.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import webapp2
import webob
from webapp2_extras import sessions as peer_sessions

import tipsessions

SECRET = "bench-secret-0123456789abcdef-0123456789"
PAYLOAD: dict[str, Any] = {
    "user_id": 48213,
    "email": "ada@example.com",
    "roles": ["editor", "reviewer"],
    "cart": {"items": [{"sku": f"SKU-{i}", "qty": i % 3 + 1} for i in range(8)]},
    "prefs": {"theme": "dark", "lang": "en-GB", "tz": "Europe/London"},
    "visits": 0,
}
REQUESTS = 1000
REPEATS = 7

SCENARIOS: dict[str, Callable[[Any], None]] = {
    # A page that does not use the session at all.
    "untouched": lambda session_of: None,
    # A page that only reads (most page views).
    "read": lambda session_of: session_of()["email"] and None,
    # A page that changes one value.
    "read+write": lambda session_of: session_of().__setitem__("visits", session_of()["visits"] + 1),
}


class OursHandler(tipsessions.BaseHandler):
    def get(self) -> None:
        self.app.registry["scenario"](lambda: self.session)

    def post(self) -> None:
        self.session.update(PAYLOAD)


class PeerHandler(webapp2.RequestHandler):
    """The pattern webapp2_extras documents for its sessions."""

    def dispatch(self) -> None:
        self.session_store = peer_sessions.get_store(request=self.request)
        try:
            super().dispatch()
        finally:
            self.session_store.save_sessions(self.response)

    def get(self) -> None:
        self.app.registry["scenario"](lambda: self.session_store.get_session())

    def post(self) -> None:
        self.session_store.get_session().update(PAYLOAD)


def ours(backend: str) -> webapp2.WSGIApplication:
    config = {"tipsessions": {"secret_key": SECRET, "default_backend": backend}}
    return webapp2.WSGIApplication([("/", OursHandler)], config=config)


def peer() -> webapp2.WSGIApplication:
    config = {"webapp2_extras.sessions": {"secret_key": SECRET}}
    return webapp2.WSGIApplication([("/", PeerHandler)], config=config)


def session_cookie(app: webapp2.WSGIApplication) -> str:
    response = webob.Request.blank("/", method="POST").get_response(app)
    cookie = response.headers["Set-Cookie"].split(";")[0]
    return cookie


def per_request_seconds(app: webapp2.WSGIApplication, cookie: str) -> float:
    environ = webob.Request.blank("/", headers={"Cookie": cookie}).environ

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    started = time.perf_counter()
    for _ in range(REQUESTS):
        for _chunk in app(dict(environ), start_response):
            pass
    return (time.perf_counter() - started) / REQUESTS


def main() -> None:
    contenders = {
        "webapp2_extras securecookie": peer(),
        "tipsessions securecookie": ours("securecookie"),
        "tipsessions encryptedcookie": ours("encryptedcookie"),
        "tipsessions memory": ours("memory"),
    }
    cookies = {name: session_cookie(app) for name, app in contenders.items()}
    print(f"{REQUESTS} requests x {REPEATS} repeats, interleaved; median per request")
    print(f"python {sys.version.split()[0]}, payload {len(str(PAYLOAD))} chars of JSON-like data\n")
    for scenario_name, scenario in SCENARIOS.items():
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(REPEATS):
            for name, app in contenders.items():
                app.registry["scenario"] = scenario
                samples[name].append(per_request_seconds(app, cookies[name]))
        baseline = statistics.median(samples["webapp2_extras securecookie"])
        print(f"[{scenario_name}]")
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"  {name:30s} {median * 1e6:8.1f} us   x{median / baseline:5.2f}")
        print()


if __name__ == "__main__":
    main()
