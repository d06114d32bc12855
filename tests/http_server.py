"""Serve a WSGI application on a real threaded HTTP server, for concurrency tests.

WebTest calls the application in the test's own thread, one request at a
time; races between requests only happen when a real server runs each
request in its own thread. The server listens on a free loopback port and
lives for one ``with`` block.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

LOOPBACK = "127.0.0.1"
_SHUTDOWN_TIMEOUT = 5.0


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, as production servers give a session's requests."""

    # A request still blocked in a handler must not keep pytest alive.
    daemon_threads = True
    # The default backlog of 5 refuses connections when many client threads
    # connect at the same moment.
    request_queue_size = 128


class QuietRequestHandler(WSGIRequestHandler):
    """Logs nothing per request: hundreds of access lines would bury the test output."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int


@contextmanager
def serve(app: WSGIApplication) -> Iterator[RunningServer]:
    """Serve ``app`` on 127.0.0.1 and a free port until the block ends."""
    server = make_server(
        LOOPBACK, 0, app, server_class=ThreadingWSGIServer, handler_class=QuietRequestHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"http-server-{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield RunningServer(LOOPBACK, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(_SHUTDOWN_TIMEOUT)
