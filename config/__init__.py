"""Example configurations of tipsessions, one module per situation.

Each module defines ``config``, a dict to pass as a webapp2 application's
configuration::

    from config.production import config
    app = webapp2.WSGIApplication(routes, config=config)

``development`` needs nothing installed or running; ``memcache``, ``redis``
and ``datastore`` build on it and move sessions to that server; ``production``
stands alone and refuses to load without its secret. Server addresses come
from environment variables so the same module serves a laptop, CI and a
deployment. Every module is loaded by the test suite, so none can fall out of
step with the library.
"""
