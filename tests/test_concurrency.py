"""Concurrent requests of one client, through a real threaded HTTP server.

The contract (API.md, "Concurrent requests"): on the server-side backends a
save applies only what its request changed to the *current* stored session,
atomically, so changes to different keys all survive, the last save of a key
wins, and a session that one request invalidated or regenerated is never
brought back by another.

Every test runs its requests over HTTP from many client threads that share
one session cookie, the way a browser's parallel requests do. Barriers and
events inside the handlers force the interleaving that matters (every
request has loaded the session before any saves), so a backend that wrote
back a request's whole stale copy would lose data in every run, not just
occasionally.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, TypeVar

import pytest
import webapp2

from tests.apps import SECRET, CallCounter
from tests.conftest import SERVER_BACKENDS, backend_settings
from tests.http_server import RunningServer, serve
from tipsessions import BaseHandler, Session
from tipsessions.backends import ServerBackend
from tipsessions.record import Record
from tipsessions.runtime import Runtime

COOKIE = "session"
THREADS = 8
#: The longest any request, barrier or event waits: a broken interleaving
#: fails the test within seconds instead of hanging it.
WAIT = 10.0

T = TypeVar("T")
Script = Callable[[BaseHandler, dict[str, str]], Any]


class ScriptedHandler(BaseHandler):
    """Runs the script the path names; what the script returns is the JSON body."""

    def get(self, script: str) -> None:
        run: Script = self.app.registry["scripts"][script]
        result = run(self, dict(self.request.GET))
        self.response.content_type = "application/json"
        self.response.write(json.dumps(result))


def report_error(
    request: webapp2.Request, response: webapp2.Response, error: Exception
) -> webapp2.Response:
    # The exception's type reaches the client, so a test can tell a typed
    # SessionConflict from any other failure.
    response.clear()
    response.set_status(500)
    response.content_type = "application/json"
    response.write(json.dumps({"error": type(error).__name__, "message": str(error)}))
    return response


@dataclass
class Site:
    """One application served over HTTP, and the scripts its requests run."""

    app: webapp2.WSGIApplication
    server: RunningServer
    scripts: dict[str, Script] = field(default_factory=dict)

    def route(self, script: Script) -> Script:
        """Make ``script`` answer ``GET /<its name>``."""
        self.scripts[script.__name__] = script
        return script

    @property
    def runtime(self) -> Runtime:
        return Runtime.of(self.app)

    @property
    def backend(self) -> ServerBackend:
        runtime = self.runtime
        backend = runtime.backend(runtime.settings.default_backend)
        assert isinstance(backend, ServerBackend)
        return backend

    def client(self) -> Client:
        return Client(self.server)

    def stored_record(self, cookie: str) -> Record | None:
        """What the backend holds for the session id inside ``cookie``, read directly."""
        session_id, _ = self.runtime.keyring.unsign(COOKIE, cookie, None)
        record, _ = self.backend.read(self.backend.storage_key(session_id.decode("ascii")))
        return record


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    #: The session cookie the response set: its value, "" when the response
    #: expired it, None when the response left it alone.
    cookie: str | None


#: Stands for "the cookie the client holds when the request starts".
HELD = object()


class Client:
    """One browser: parallel requests all send the session cookie it holds.

    Like a browser, it keeps whatever session cookie the latest response set.
    """

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self._lock = threading.Lock()
        self.cookie: str | None = None

    def get(self, script: str, cookie: Any = HELD, **params: Any) -> Reply:
        """``GET /script?params``; ``cookie`` overrides the held cookie (None: send none)."""
        with self._lock:
            sent = self.cookie if cookie is HELD else cookie
        headers = {"Cookie": f"{COOKIE}={sent}"} if sent else {}
        path = f"/{script}?{urllib.parse.urlencode(params)}"
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=WAIT)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            reply = Reply(
                response.status,
                json_or_text(response.read()),
                session_cookie(response.headers.get_all("Set-Cookie") or []),
            )
        finally:
            connection.close()
        if reply.cookie is not None:
            with self._lock:
                self.cookie = reply.cookie or None
        return reply

    def ok(self, script: str, cookie: Any = HELD, **params: Any) -> Reply:
        """Like :meth:`get`, and the request must succeed."""
        reply = self.get(script, cookie, **params)
        assert reply.status == 200, f"/{script} answered {reply.status}: {reply.body}"
        return reply


def json_or_text(body: bytes) -> Any:
    # Scripts answer JSON; anything else (webapp2's own error pages) is kept
    # as text so that a failing assertion shows it.
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def session_cookie(set_cookie_headers: list[str]) -> str | None:
    for header in set_cookie_headers:
        morsel = SimpleCookie(header).get(COOKIE)
        if morsel is not None:
            return "" if morsel["max-age"] == "0" else morsel.value
    return None


def in_parallel(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(0)`` ... ``work(count - 1)``, each in its own thread; the results in order.

    The first exception of any thread is raised once all have ended (each is
    bounded by the request timeout and the barrier timeouts).
    """
    if count == 0:
        return []
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(work, index) for index in range(count)]
    return [future.result() for future in futures]


def wait_for(event: threading.Event) -> None:
    if not event.wait(WAIT):
        raise TimeoutError("the other request of the interleaving never got there")


@pytest.fixture(params=SERVER_BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    # The cookie backends cannot merge concurrent requests: the last response wins.
    return str(request.param)


@pytest.fixture
def settings(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return {"secret_key": SECRET, **backend_settings(backend_name, request, tmp_path)}


@pytest.fixture
def open_site(settings: dict[str, Any]) -> Iterator[Callable[..., Site]]:
    """Serve a fresh application; keyword arguments override its settings."""
    with ExitStack() as servers:

        def open_(**overrides: Any) -> Site:
            app = webapp2.WSGIApplication(
                [webapp2.Route("/<script>", ScriptedHandler)],
                config={"tipsessions": {**settings, **overrides}},
            )
            app.error_handlers[500] = report_error
            site = Site(app, servers.enter_context(serve(app)))
            app.registry["scripts"] = site.scripts
            return site

        yield open_


@pytest.fixture
def site(open_site: Callable[..., Site]) -> Site:
    return open_site()


def contents(handler: BaseHandler, params: dict[str, str]) -> dict[str, Any]:
    """The session as the request found it, without changing it."""
    session = handler.session
    return {"new": session.new, "data": dict(session)}


def flashes(handler: BaseHandler, params: dict[str, str]) -> list[Any]:
    return handler.session.get_flashes()


def start(handler: BaseHandler, params: dict[str, str]) -> None:
    handler.session["started"] = True


def write_after(barrier: threading.Barrier) -> Script:
    """A script that loads the session, waits for ``barrier``, then sets ``key`` to ``value``."""

    def write_own_key(handler: BaseHandler, params: dict[str, str]) -> None:
        session = handler.session
        # Every request at the barrier now holds the same, soon stale, copy.
        barrier.wait()
        session[params["key"]] = params["value"]

    return write_own_key


def test_parallel_writes_to_different_keys_all_survive(site: Site, backend_name: str) -> None:
    # Transactions on the Datastore emulator take tens of milliseconds each.
    threads, rounds = (4, 10) if backend_name == "datastore" else (THREADS, 50)
    site.route(start)
    site.route(write_after(threading.Barrier(threads, timeout=WAIT)))
    site.route(contents)
    client = site.client()
    client.ok("start")

    def writer(thread: int) -> dict[str, str]:
        written = {}
        for round_ in range(rounds):
            key, value = f"t{thread}-r{round_}", f"{thread}:{round_}"
            client.ok("write_own_key", key=key, value=value)
            written[key] = value
        return written

    written = {key: value for part in in_parallel(threads, writer) for key, value in part.items()}
    stored = client.ok("contents").body["data"]
    kept = sum(stored.get(key) == value for key, value in written.items())
    print(f"\n{backend_name}: {kept}/{len(written)} writes kept, {len(written) - kept} lost")
    assert len(written) == threads * rounds
    assert stored == {"started": True, **written}


def test_a_burst_of_writers_each_saves_or_gets_a_typed_conflict(
    site: Site, backend_name: str
) -> None:
    # More writers at once than a browser ever sends (fewer on the slow
    # Datastore emulator): a save that keeps losing the race must fail
    # loudly with SessionConflict, never drop its write.
    writers = 8 if backend_name == "datastore" else 48
    site.route(start)
    site.route(write_after(threading.Barrier(writers, timeout=WAIT)))
    site.route(contents)
    client = site.client()
    client.ok("start")

    replies = in_parallel(
        writers, lambda index: client.get("write_own_key", key=f"w{index}", value="x")
    )
    saved = {f"w{index}" for index, reply in enumerate(replies) if reply.status == 200}
    failures = [reply.body for reply in replies if reply.status != 200]
    conflicts = [body for body in failures if body["error"] == "SessionConflict"]
    stored = client.ok("contents").body["data"]
    print(
        f"\n{backend_name}: {writers} writers at once: {len(saved)} saved, "
        f"{len(conflicts)} SessionConflict, {len(failures) - len(conflicts)} other failures, "
        f"{len(saved - stored.keys())} saved writes missing"
    )
    assert failures == conflicts
    # A conflicted request stored nothing; every saved one is kept.
    assert stored == {"started": True, **dict.fromkeys(saved, "x")}


def test_same_key_races_end_on_a_whole_value_of_the_last_save(
    site: Site, backend_name: str
) -> None:
    rounds = 3 if backend_name == "datastore" else 8
    # Two of every eight requests delete the contested key instead of setting it.
    deleters = {3, 7}
    round_start = threading.Barrier(THREADS, timeout=WAIT)

    def contested_value(thread: int, round_: int) -> dict[str, Any]:
        # Several fields, so a value stitched together from two writers shows.
        return {"thread": thread, "round": round_, "tag": f"{thread}-{round_}" * 8}

    @site.route
    def start_contested(handler: BaseHandler, params: dict[str, str]) -> None:
        handler.session["contested"] = {"thread": None}
        for round_ in range(rounds):
            handler.session[f"deleted-in-round-{round_}"] = round_

    @site.route
    def race(handler: BaseHandler, params: dict[str, str]) -> None:
        thread, round_ = int(params["thread"]), int(params["round"])
        session = handler.session
        round_start.wait()
        if thread == round_ % THREADS:
            # The only request that touches this key; the other seven of the
            # round still hold it in their stale copies when they save.
            del session[f"deleted-in-round-{round_}"]
        elif thread in deleters:
            session.pop("contested", None)
        else:
            session["contested"] = contested_value(thread, round_)

    site.route(contents)
    client = site.client()
    client.ok("start_contested")

    def racer(thread: int) -> None:
        for round_ in range(rounds):
            client.ok("race", thread=thread, round=round_)

    in_parallel(THREADS, racer)
    stored = client.ok("contents").body["data"]
    # Rounds are serialised by the barrier, so the last save was one of the last round's.
    last_round = rounds - 1
    last_values = [
        contested_value(thread, last_round)
        for thread in range(THREADS)
        if thread not in deleters and thread != last_round % THREADS
    ]
    resurrected = [key for key in stored if key.startswith("deleted-in-round-")]
    print(
        f"\n{backend_name}: {rounds} rounds of {THREADS}; contested key ended as "
        f"{stored.get('contested', '(deleted)')!r:.60}; {len(resurrected)} deleted keys came back"
    )
    assert resurrected == []
    assert "contested" not in stored or stored["contested"] in last_values


# What the request that is in flight while the session ends does before it saves.
IN_FLIGHT_CHANGES: dict[str, Callable[[Session], Any]] = {
    "sets a new key": lambda session: session.__setitem__("last_seen", "now"),
    "changes a nested value": lambda session: session["cart"].append(3),
    "deletes one of two keys": lambda session: session.pop("cart"),
    "adds a flash": lambda session: session.add_flash("saved"),
    "reads the flashes": lambda session: session.get_flashes(),
}


def empty(session: Session) -> None:
    """Delete every key and show every flash, leaving nothing to store."""
    session.clear()
    session.get_flashes()


# How a request ends the session: a logout, or leaving nothing to store, which
# deletes the session (and expires its cookie) just the same.
ENDINGS: dict[str, Callable[[Session], Any]] = {
    "invalidate()": lambda session: session.invalidate(),
    "emptying it": empty,
}


@dataclass
class EndingRace:
    """One trial: the in-flight request loads, the session ends, then it saves."""

    loaded: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


@pytest.mark.parametrize("ending", ENDINGS)
def test_an_ended_session_is_never_brought_back_by_a_request_in_flight(
    site: Site, backend_name: str, ending: str
) -> None:
    # Both endings leave no record behind; the saves racing them then take
    # the same path, which the hundred logouts already cover.
    trials = 100 if ending == "invalidate()" else 25
    # A few trials at a time, each with its own client and session, keep a
    # hundred of them quick on the slower servers.
    lanes = 4
    races = [EndingRace() for _ in range(lanes)]

    @site.route
    def log_in(handler: BaseHandler, params: dict[str, str]) -> None:
        handler.session.update({"user": "ada", "cart": [1, 2]})
        handler.session.add_flash("welcome")

    @site.route
    def in_flight(handler: BaseHandler, params: dict[str, str]) -> None:
        race = races[int(params["lane"])]
        session = handler.session
        race.loaded.set()
        # The ending request runs and saves now, while this one holds the data.
        wait_for(race.ended)
        IN_FLIGHT_CHANGES[params["change"]](session)

    @site.route
    def end(handler: BaseHandler, params: dict[str, str]) -> None:
        ENDINGS[ending](handler.session)

    changes = list(IN_FLIGHT_CHANGES)

    def run_trials(lane: int) -> list[tuple[str, bool, bool]]:
        """(change, data came back, the in-flight request set a cookie) of each trial."""
        outcomes = []
        for trial in range(lane, trials, lanes):
            change = changes[trial % len(changes)]
            race = races[lane] = EndingRace()
            client = site.client()
            client.ok("log_in")
            old_cookie = client.cookie
            assert old_cookie
            with ThreadPoolExecutor(max_workers=1) as pool:
                in_flight_reply = pool.submit(client.ok, "in_flight", lane=lane, change=change)
                wait_for(race.loaded)
                assert client.ok("end").cookie == "", "the session's cookie was not expired"
                race.ended.set()
            # Nothing stored means nothing to load: the old cookie reaches an empty session.
            came_back = site.stored_record(old_cookie) is not None
            outcomes.append((change, came_back, in_flight_reply.result().cookie is not None))
        return outcomes

    outcomes = [outcome for lane in in_parallel(lanes, run_trials) for outcome in lane]
    resurrections = collections.Counter(change for change, came_back, _ in outcomes if came_back)
    cookies_reset = collections.Counter(change for change, _, set_cookie in outcomes if set_cookie)
    print(
        f"\n{backend_name}: ended by {ending} while a request was in flight, "
        f"{len(outcomes)} times: {resurrections.total()} resurrections, "
        f"{cookies_reset.total()} cookies set after the end"
    )
    assert len(outcomes) == trials
    assert resurrections == {}
    assert cookies_reset == {}


# What requests carrying the old id do, before or after the regenerate_id() is saved.
OLD_ID_CHANGES: dict[str, Callable[[Session], Any]] = {
    "sets a key": lambda session: session.__setitem__("note", "from the old id"),
    "deletes a key": lambda session: session.pop("cart", None),
    "adds a flash": lambda session: session.add_flash("from the old id"),
    "only reads": lambda session: session.get("cart"),
}
LOGGED_IN = {"cart": [1], "user": "ada"}


@dataclass
class RegenerateRace:
    """What the requests of one race share inside the server."""

    #: The early requests and the login meet here once all have loaded the session.
    started: threading.Barrier
    login_saved: threading.Event = field(default_factory=threading.Event)


@dataclass
class RegenerateOutcome:
    client: Client
    old_cookie: str
    login: Reply
    #: When the login's response arrived: its old id was retired just before.
    logged_in_at: float
    #: Replies to requests that loaded the session under the old id before the
    #: login saved, and saved after it.
    early: list[Reply]
    #: Replies to requests that carried the old id but started after the login.
    late: list[Reply]


def run_regenerate_race(site: Site, early: list[str], late: list[str]) -> RegenerateOutcome:
    """Log in (``regenerate_id()``) while requests carrying the old id make the
    ``early`` changes, then send more with the old id to make the ``late`` ones."""
    if "log_in" not in site.scripts:
        register_regenerate_scripts(site)
    race = RegenerateRace(started=threading.Barrier(len(early) + 1, timeout=WAIT))
    site.app.registry["race"] = race
    client = site.client()
    client.ok("start_anonymous")
    old_cookie = client.cookie
    assert old_cookie

    with ThreadPoolExecutor(max_workers=max(len(early), 1)) as pool:
        early_replies = [
            pool.submit(client.ok, "early", cookie=old_cookie, change=change) for change in early
        ]
        login = client.ok("log_in")
        logged_in_at = time.monotonic()
        race.login_saved.set()
        late_replies = in_parallel(
            len(late), lambda index: client.ok("late", cookie=old_cookie, change=late[index])
        )
    return RegenerateOutcome(
        client,
        old_cookie,
        login,
        logged_in_at,
        [reply.result() for reply in early_replies],
        late_replies,
    )


def register_regenerate_scripts(site: Site) -> None:
    def race() -> RegenerateRace:
        current: RegenerateRace = site.app.registry["race"]
        return current

    @site.route
    def start_anonymous(handler: BaseHandler, params: dict[str, str]) -> None:
        handler.session["cart"] = [1]

    @site.route
    def early(handler: BaseHandler, params: dict[str, str]) -> None:
        session = handler.session
        race().started.wait()
        wait_for(race().login_saved)
        OLD_ID_CHANGES[params["change"]](session)

    @site.route
    def log_in(handler: BaseHandler, params: dict[str, str]) -> None:
        session = handler.session
        # Every early request has loaded the session under the old id.
        race().started.wait()
        session.regenerate_id()
        session["user"] = "ada"

    @site.route
    def late(handler: BaseHandler, params: dict[str, str]) -> dict[str, Any]:
        found = contents(handler, params)
        OLD_ID_CHANGES[params["change"]](handler.session)
        return found

    site.route(contents)


def seconds_until_gone(site: Site, cookie: str, since: float, limit: float) -> float | None:
    """How long after ``since`` the backend stopped holding anything for ``cookie``'s id;
    None if it still did ``limit`` seconds after ``since``."""
    while site.stored_record(cookie) is not None:
        if time.monotonic() - since > limit:
            return None
        time.sleep(0.05)  # Expiry runs on the server's clock; no event announces it.
    return time.monotonic() - since


def test_regenerate_retires_the_old_id_for_requests_still_carrying_it(
    site: Site, backend_name: str
) -> None:
    trials = 3 if backend_name == "datastore" else 5
    changes = list(OLD_ID_CHANGES)
    data_through_old_id = cookies_from_old_id = old_id_not_retired = forks = 0
    for _ in range(trials):
        race = run_regenerate_race(site, early=changes, late=changes)
        new_cookie = race.login.cookie
        assert new_cookie and new_cookie != race.old_cookie
        data_through_old_id += sum(bool(reply.body["data"]) for reply in race.late)
        data_through_old_id += bool(race.client.ok("contents", cookie=race.old_cookie).body["data"])
        cookies_from_old_id += sum(reply.cookie is not None for reply in race.early + race.late)
        # A tombstone, neither a live record nor nothing, answers for the old id.
        old_record = site.stored_record(race.old_cookie)
        old_id_not_retired += old_record is None or not old_record.tombstone
        # The client holds the new id, and it reaches the login's data only.
        after = race.client.ok("contents").body["data"]
        forks += race.client.cookie != new_cookie or after != LOGGED_IN

    print(
        f"\n{backend_name}: {trials} logins raced by {len(changes)} + {len(changes)} "
        f"old-id requests each: {data_through_old_id} data reached through the old id, "
        f"{cookies_from_old_id} cookies set by old-id requests, "
        f"{old_id_not_retired} old ids not a tombstone, {forks} forks"
    )
    assert (data_through_old_id, cookies_from_old_id, old_id_not_retired, forks) == (0, 0, 0, 0)


def test_refresh_racing_regenerate_keeps_the_client_logged_in(
    open_site: Callable[..., Site], backend_name: str
) -> None:
    # A request that only reads and is due to re-issue its cookie (every
    # request is, once the cookie is older than session_refresh_interval)
    # loaded the session under the old id and saves after the login. Were it
    # to re-issue the old id's cookie, the browser would drop the new one:
    # logged out right after logging in.
    site = open_site(session_refresh_interval=0)
    race = run_regenerate_race(site, early=["only reads"], late=[])
    assert race.early[0].cookie is None, "the old id's cookie was issued again"
    assert race.client.ok("contents").body["data"] == LOGGED_IN


def test_the_old_id_stays_a_tombstone_for_regenerate_grace_then_goes(
    open_site: Callable[..., Site], backend_name: str
) -> None:
    grace = 1
    # Every response due for a refresh, so that the old-id requests in flight
    # during the login would extend the tombstone if anything did.
    site = open_site(regenerate_grace=grace, session_refresh_interval=0)
    race = run_regenerate_race(site, early=list(OLD_ID_CHANGES), late=list(OLD_ID_CHANGES))
    # memcached counts whole seconds, and its backend adds one so that the
    # tombstone lives at least the grace: allow that much and more.
    lifetime = seconds_until_gone(site, race.old_cookie, race.logged_in_at, limit=grace + 3)
    lived = "past the limit" if lifetime is None else f"{lifetime:.2f} s"
    print(f"\n{backend_name}: regenerate_grace={grace} s; the old id's tombstone lived {lived}")
    assert lifetime is not None, "the tombstone outlived regenerate_grace"
    # Measured from the login's response, which comes just after the tombstone was stored.
    assert lifetime >= grace - 0.1, "the tombstone went before regenerate_grace was over"


def test_flashes_added_in_parallel_are_each_shown_once(site: Site, backend_name: str) -> None:
    adders = THREADS
    # The adders and one reader all load the session before any of them saves.
    all_loaded = threading.Barrier(adders + 1, timeout=WAIT)

    @site.route
    def start_with_a_flash(handler: BaseHandler, params: dict[str, str]) -> None:
        # The key keeps the session alive when the reader takes the only flash:
        # a session left empty ends, and changes saved after that are dropped
        # (see test_an_ended_session_is_never_brought_back_by_a_request_in_flight).
        handler.session["user"] = "ada"
        handler.session.add_flash("shown before", "info")

    @site.route
    def add_flash(handler: BaseHandler, params: dict[str, str]) -> None:
        session = handler.session
        all_loaded.wait()
        session.add_flash(f"flash {params['index']}", "info")

    @site.route
    def read_flashes_in_the_race(handler: BaseHandler, params: dict[str, str]) -> list[Any]:
        session = handler.session
        all_loaded.wait()
        return session.get_flashes()

    site.route(flashes)
    client = site.client()
    client.ok("start_with_a_flash")

    def request(index: int) -> Reply:
        if index == adders:
            return client.ok("read_flashes_in_the_race")
        return client.ok("add_flash", index=index)

    read_in_race = in_parallel(adders + 1, request)[adders].body
    first_read, second_read = client.ok("flashes").body, client.ok("flashes").body
    shown = collections.Counter(value for value, _ in first_read + second_read)
    print(f"\n{backend_name}: {adders} flashes added in parallel, shown {dict(shown)}")
    # The reader consumed only what it showed, never a flash added beside it.
    assert read_in_race == [["shown before", "info"]]
    assert shown == {f"flash {index}": 1 for index in range(adders)}
    assert all(level == "info" for _, level in first_read)
    assert second_read == []


def test_read_only_requests_never_write(site: Site, backend_name: str) -> None:
    per_thread = 5 if backend_name == "datastore" else 10

    @site.route
    def start_with_a_cart(handler: BaseHandler, params: dict[str, str]) -> None:
        handler.session.update({"cart": [1, 2], "profile": {"name": "Ada"}})

    @site.route
    def browse(handler: BaseHandler, params: dict[str, str]) -> list[Any]:
        session = handler.session
        # Everything a page does to show a session without changing it.
        session.set_t("page", "cart")
        return [
            session["cart"],
            session["profile"]["name"],
            session.get("missing"),
            "user" in session,
            session.get_t("page"),
            session.get_flashes(),
        ]

    client = site.client()
    client.ok("start_with_a_cart")
    calls = CallCounter(site.backend)

    def reader(thread: int) -> list[Reply]:
        return [client.ok("browse") for _ in range(per_thread)]

    replies = [reply for part in in_parallel(THREADS, reader) for reply in part]
    print(
        f"\n{backend_name}: {len(replies)} read-only requests: {calls['read']} reads, "
        f"{calls['update']} updates, {calls['put']} puts, {calls.writes()} writes in all"
    )
    assert all(reply.body == [[1, 2], "Ada", None, False, "cart", []] for reply in replies)
    assert calls["read"] == len(replies)
    assert (calls["update"], calls["put"], calls.writes()) == (0, 0, 0)
    assert [reply.cookie for reply in replies] == [None] * len(replies)
