"""Sessions in Redis: shared by every process, kept across restarts.

Redis applies a server-side expiry to every session record, so abandoned
sessions disappear on their own, and it merges concurrent saves atomically.
With persistence (RDB or AOF) enabled, sessions survive a Redis restart.

``TIPSESSIONS_REDIS_URL`` is a ``redis://`` or ``rediss://`` (TLS) URL; a
password goes in the URL: ``redis://:password@host:6379/0``.
"""

import os

from config.development import config as development

config = {
    "tipsessions": {
        **development["tipsessions"],
        "default_backend": "redis",
        # A day idle; without it records expire after server_ttl (14 days).
        "session_max_age": 24 * 3600,
        "redis": {
            "url": os.environ.get("TIPSESSIONS_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "prefix": "myapp:session:",
            "connect_timeout": 1.0,
            "socket_timeout": 1.0,
        },
    }
}
