"""Error pages in the shop's own style."""

from __future__ import annotations

import webapp2
import webob

from sample_app.rendering import render


def page_not_found(
    request: webapp2.Request, response: webob.Response, exception: Exception
) -> webob.Response:
    """webapp2's handler for 404: the layout of every page, without any session."""
    response.status_int = 404
    response.content_type = "text/html"
    response.charset = "utf-8"
    response.write(
        render(
            "not_found.html",
            {"path": request.path, "uri_for": webapp2.uri_for},
        )
    )
    return response
