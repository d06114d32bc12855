"""The WSGI application: routes and the factory tests and servers call."""

from __future__ import annotations

from typing import Any

import webapp2
import webob

from sample_app.auth import LoginHandler, LogoutHandler
from sample_app.cart import AddToCartHandler, CartHandler, EmptyCartHandler
from sample_app.devices import (
    ChangePasswordHandler,
    DevicesHandler,
    SignOutDeviceHandler,
    SignOutOthersHandler,
)
from sample_app.errors import page_not_found
from sample_app.home import AboutHandler, HomeHandler
from sample_app.inspector import SessionsHandler
from sample_app.settings import config_from_environment
from sample_app.whoami import ApiWhoAmIHandler, WhoAmIHandler


class Request(webapp2.Request):
    """webapp2's request, keeping small bodies in memory.

    webapp2 spools every request body to a temporary file (its limit is 0)
    that nothing closes; WebOb's own limit keeps form posts in memory and
    spools only bodies over 10 KiB.
    """

    request_body_tempfile_limit = webob.Request.request_body_tempfile_limit


ROUTES = [
    webapp2.Route("/", HomeHandler, name="home"),
    webapp2.Route("/cart", CartHandler, name="cart"),
    webapp2.Route("/cart/add", AddToCartHandler, name="cart-add", methods=["POST"]),
    webapp2.Route("/cart/empty", EmptyCartHandler, name="cart-empty", methods=["POST"]),
    webapp2.Route("/login", LoginHandler, name="login"),
    webapp2.Route("/logout", LogoutHandler, name="logout", methods=["POST"]),
    webapp2.Route("/whoami", WhoAmIHandler, name="whoami"),
    webapp2.Route("/api/whoami", ApiWhoAmIHandler, name="api-whoami"),
    webapp2.Route("/sessions", SessionsHandler, name="sessions"),
    webapp2.Route("/devices", DevicesHandler, name="devices"),
    webapp2.Route(
        "/devices/sign-out", SignOutDeviceHandler, name="devices-sign-out", methods=["POST"]
    ),
    webapp2.Route(
        "/devices/sign-out-others",
        SignOutOthersHandler,
        name="devices-sign-out-others",
        methods=["POST"],
    ),
    webapp2.Route(
        "/devices/password", ChangePasswordHandler, name="devices-password", methods=["POST"]
    ),
    webapp2.Route("/about", AboutHandler, name="about"),
]


def create_app(
    config: dict[str, Any] | None = None, debug: bool = False
) -> webapp2.WSGIApplication:
    """Build the sample application.

    ``config`` is a webapp2 configuration with a ``"tipsessions"`` section;
    an optional ``"sample_app": {"cart_backend": NAME}`` picks the cart's
    backend (``file`` when left out). Without ``config`` the environment
    decides, as described in :mod:`sample_app.settings`.
    """
    if config is None:
        config = config_from_environment()
    app = webapp2.WSGIApplication(ROUTES, debug=debug, config=config)
    app.request_class = Request
    app.error_handlers[404] = page_not_found
    return app
