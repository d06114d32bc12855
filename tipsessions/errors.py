"""The exceptions tipsessions raises.

Everything derives from :class:`SessionError`, so one ``except`` catches them
all. Each carries the evidence needed to act on it as attributes, not only in
its message.
"""

from __future__ import annotations


class SessionError(Exception):
    """Root of every error tipsessions raises."""


class ConfigError(SessionError):
    """The configuration is missing a key, has an unknown one or a bad value.

    Raised when the first :class:`~tipsessions.SessionStore` of an application
    is built, so a typo fails on the first request instead of silently
    falling back to a default. ``key`` is the dotted name of the offending
    setting (``"tipsessions.redis.url"``) or the backend name asked for.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class SerializationError(SessionError, TypeError):
    """A session value is not plain JSON data.

    Sessions hold ``str``, ``int``, ``float``, ``bool``, ``None``, lists and
    dicts with string keys, nothing else, so that any backend can store them
    and no pickle is ever involved. ``key`` is the session key whose value
    was refused.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"session key {key!r}: {message}")
        self.key = key


class SessionTooLarge(SessionError):
    """A cookie session grew past what browsers keep.

    Browsers silently drop cookies over about 4 KB, which would lose the
    whole session without a trace; failing loudly is the lesser evil. Keep
    large data in a server-side backend (memory, file, memcache, redis,
    datastore), which only puts a short id in the cookie.
    """

    def __init__(self, cookie_name: str, size: int, limit: int) -> None:
        super().__init__(
            f"cookie {cookie_name!r} would be {size} bytes, over the {limit} "
            "bytes browsers keep; store this session in a server-side backend "
            "(memory, file, memcache, redis or datastore) instead"
        )
        self.cookie_name = cookie_name
        self.size = size
        self.limit = limit


class BackendUnavailable(SessionError):
    """A backend's server could not be reached or did not answer in time.

    Usually the server is down, the address in the configuration is wrong,
    or a firewall drops the connection. ``backend`` is the backend name and
    ``address`` where it was looked for.
    """

    def __init__(self, backend: str, address: str, reason: str) -> None:
        super().__init__(f"{backend} backend at {address} is unavailable: {reason}")
        self.backend = backend
        self.address = address
        self.reason = reason


class SessionConflict(SessionError):
    """Concurrent requests kept changing a session while this one saved.

    Saves retry a few times, merging this request's changes into the newest
    stored state; this is raised only when every retry lost the race, rather
    than dropping the write silently. It points to a client hammering one
    session with many parallel writes.
    """

    def __init__(self, backend: str, attempts: int) -> None:
        super().__init__(
            f"{backend} backend: session changed concurrently on each of "
            f"{attempts} attempts to save it"
        )
        self.backend = backend
        self.attempts = attempts
