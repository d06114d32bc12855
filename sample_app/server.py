"""A small threaded HTTP server for the sample, from the standard library.

Browsers open several connections at once (page, favicon, preconnects); a
thread per request keeps one slow request from stalling the others.
"""

from __future__ import annotations

import socketserver
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIApplication


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Request threads must not keep the process alive after shutdown().
    daemon_threads = True


class QuietRequestHandler(WSGIRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(
    app: WSGIApplication, host: str = "127.0.0.1", port: int = 8080, quiet: bool = False
) -> ThreadingWSGIServer:
    """Bind a server for ``app``; port 0 picks a free port (see ``server_port``).

    The caller runs it with ``serve_forever()`` and stops it with
    ``shutdown()`` then ``server_close()``.
    """
    handler = QuietRequestHandler if quiet else WSGIRequestHandler
    server = ThreadingWSGIServer((host, port), handler)
    server.set_app(app)
    return server
