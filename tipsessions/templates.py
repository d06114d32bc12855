"""Session values for templates, loaded only when a template reads them.

Most pages of a site render a layout that *could* show the signed-in user
or a pending flash message, yet many requests never need either. Handing a
template the real session would load it on every page: a backend round trip
for server-side sessions, and a cookie to verify for cookie sessions. The
objects made here defer all of that until the template actually reads a
value, so a page that shows nothing from the session costs nothing and sends
no ``Set-Cookie``.

Usage with Jinja2 (any engine that accepts a dict of globals works the same)::

    from tipsessions.templates import context

    class PageHandler(tipsessions.BaseHandler):
        def render(self, name, **values):
            template = jinja_env.get_template(name)
            self.response.write(template.render(context(self), **values))

and in the template::

    {% for message, level in flashes() %}<p class="{{ level }}">{{ message }}</p>{% endfor %}
    {% if session.email %}Signed in as {{ session.email }}{% endif %}
    {% if transient("api_user") %}Authenticated by token{% endif %}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeAlias

import webob

from .session import Session
from .store import get_store

__all__ = ["LazySession", "SessionSource", "context"]


class _HasSessionStore(Protocol):
    """A handler with the ``session_store`` of :class:`tipsessions.SessionMixin`."""

    @property
    def session_store(self) -> Any: ...


#: What :func:`context` accepts: the handler rendering the page, or the
#: request when rendering happens outside a handler.
SessionSource: TypeAlias = _HasSessionStore | webob.Request


class LazySession(Mapping[str, Any]):
    """A read-only view of one session that loads it on first use.

    Reading a key (``session["email"]``, ``session.get("email")``, or
    ``{{ session.email }}`` in Jinja2), testing membership, iterating or
    asking for ``len()`` loads the session; creating the view does not.
    The view is read-only on purpose: templates present state, handlers
    change it.

    Jinja2 resolves ``session.email`` by trying the attribute first, then the
    key. Keys that share a name with an attribute of the view (``items``,
    ``keys``, ``values``, ``get``, ``new``) therefore need the subscript form
    in templates: ``session["items"]``.
    """

    __slots__ = ("_load", "_loaded")

    def __init__(self, load: Callable[[], Session]) -> None:
        self._load = load
        self._loaded: Session | None = None

    def _get(self) -> Session:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @property
    def new(self) -> bool:
        """True when the request carried no valid stored session."""
        return bool(self._get().new)

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._get().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        state = "not loaded" if self._loaded is None else "loaded"
        return f"<LazySession {state}>"


def context(
    source: SessionSource,
    name: str | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Template globals for one session, none of which loads it up front.

    ``source`` is the handler (anything with ``session_store``, such as a
    :class:`tipsessions.BaseHandler`) or the request. ``name`` and
    ``backend`` select the session exactly as
    :meth:`~tipsessions.SessionStore.get_session` does; by default it is the
    request's default session.

    The returned dict holds:

    ``session``
        A :class:`LazySession` of the stored values (transient values
        included, as ``session[key]`` sees them).
    ``flashes(key="_flash")``
        The pending flash messages as ``(message, level)`` pairs, oldest
        first. Like :meth:`~tipsessions.Session.get_flashes` it consumes
        them, so call it once per page, usually in the layout.
    ``transient(key, default=None)``
        A value the handler set for this request with
        :meth:`~tipsessions.Session.set_t`.

    Each loads the session at its first call and not before; all three share
    the one session object of the request.
    """

    def load() -> Session:
        # The store is fetched here, not above: merely building the context
        # must not create a store for a page that never reads the session.
        store = get_store(source) if isinstance(source, webob.Request) else source.session_store
        return store.get_session(name, backend=backend)

    session = LazySession(load)

    def flashes(key: str = "_flash") -> list[tuple[Any, str | None]]:
        return session._get().get_flashes(key)

    def transient(key: str, default: Any = None) -> Any:
        return session._get().get_t(key, default)

    return {"session": session, "flashes": flashes, "transient": transient}
