"""Sessions in memcached: fast, shared by every process, and forgetful.

memcached evicts the least recently used entries when it runs out of memory
and loses everything when it restarts, so keep in it only what a user can
afford to lose (a cart, preferences) or pair it with a short idle timeout.
Several servers spread the sessions by hashing their ids.

``TIPSESSIONS_MEMCACHE_SERVERS`` is a comma-separated list of ``host:port``.
"""

import os

from config.development import config as development

SERVERS = os.environ.get("TIPSESSIONS_MEMCACHE_SERVERS", "127.0.0.1:11211").split(",")

config = {
    "tipsessions": {
        **development["tipsessions"],
        "default_backend": "memcache",
        # Two hours idle: memcached is a cache, not a store of record.
        "session_max_age": 2 * 3600,
        "memcache": {
            "servers": [server.strip() for server in SERVERS if server.strip()],
            # One memcached shared by several applications needs a prefix each.
            "prefix": "myapp:session:",
            "connect_timeout": 1.0,
            "timeout": 1.0,
        },
    }
}
