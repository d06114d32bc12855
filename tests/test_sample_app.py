"""The sample app, clicked through with WebTest the way a visitor would.

Each test is one visitor (WebTest keeps the cookie jar) walking through a
feature: the visit counter, the cart in a named server-side session, sign in
and out, flashes, token requests with transient values, and the page that
reports where sessions live. The cart runs on each embedded server-side
backend.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import webtest

from config.development import config as development
from sample_app import create_app
from sample_app.settings import config_from_environment

ROOT = Path(__file__).resolve().parent.parent


def sample_config(cart_backend: str, tmp_path: Path) -> dict[str, Any]:
    config = copy.deepcopy(development)
    config["tipsessions"]["file"] = {"path": str(tmp_path / "sessions")}
    config["sample_app"] = {"cart_backend": cart_backend}
    return config


@pytest.fixture(params=["memory", "file"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> webtest.TestApp:
    return webtest.TestApp(create_app(sample_config(request.param, tmp_path)))


def visitor(app: webtest.TestApp) -> webtest.TestApp:
    """A second browser on the same application (its own cookie jar)."""
    return webtest.TestApp(app.app)


def cookie_names(response: webtest.TestResponse) -> list[str]:
    return sorted(header.split("=", 1)[0] for header in response.headers.getall("Set-Cookie"))


def flashes(page: webtest.TestResponse) -> list[tuple[str, str]]:
    return [
        (item.get_text(strip=True), " ".join(item["class"]))
        for item in page.html.select(".flashes li")
    ]


def sign_in(
    app: webtest.TestApp, remember: bool = False, password: str = "lovelace", stay: bool = False
) -> Any:
    form = app.get("/login").forms["login-form"]
    form["email"] = "ada@example.com"
    form["password"] = password
    form["remember"] = remember
    form["stay"] = stay
    return form.submit()


def set_cookie_header(response: webtest.TestResponse, name: str) -> str:
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith(f"{name}=")]
    return header


def add_to_cart(app: webtest.TestApp, product: str) -> Any:
    page = app.get("/cart")
    form = next(
        f
        for f in page.forms.values()
        if f.fields.get("product", [None])[0] is not None and f["product"].value == product
    )
    return form.submit()


def cart_quantities(app: webtest.TestApp) -> dict[str, int]:
    page = app.get("/cart")
    return {
        row.select("td")[0].get_text(strip=True): int(row.select_one(".quantity").get_text())
        for row in page.html.select("tr.cart-line")
    }


def visits(page: webtest.TestResponse) -> int:
    return int(page.html.select_one("#visits").get_text())


def test_the_visit_counter_lives_in_the_default_cookie_session(app: webtest.TestApp) -> None:
    assert visits(app.get("/")) == 1
    assert visits(app.get("/")) == 2
    assert visits(visitor(app).get("/")) == 1
    assert "session" in app.cookies


def test_the_cart_keeps_items_across_requests(app: webtest.TestApp) -> None:
    add_to_cart(app, "tea").follow()
    add_to_cart(app, "tea")
    add_to_cart(app, "mug")

    assert cart_quantities(app) == {"Green tea, 100 g": 2, "Enamel mug": 1}
    assert app.get("/").html.select_one("#cart-count").get_text() == "3"
    assert cart_quantities(visitor(app)) == {}


def test_the_cart_cookie_holds_only_an_id(app: webtest.TestApp) -> None:
    add_to_cart(app, "honey")
    cart_cookie = app.cookies["cart"]
    assert "honey" not in cart_cookie
    assert "lines" not in cart_cookie
    # The default session is a signed cookie: the counter is in it, readable.
    assert "cart" not in app.cookies["session"]


def test_emptying_the_cart_deletes_it_and_expires_its_cookie(app: webtest.TestApp) -> None:
    add_to_cart(app, "tea")
    page = app.get("/cart")
    empty = next(f for f in page.forms.values() if f.action == "/cart/empty")

    response = empty.submit()

    assert "cart=;" in " ".join(response.headers.getall("Set-Cookie"))
    assert "cart" not in app.cookies
    assert ("Your cart is empty.", "flash flash-info") in flashes(response.follow())


def test_the_cart_page_names_its_backend(app: webtest.TestApp) -> None:
    backend = app.app.config["sample_app"]["cart_backend"]
    assert f'backend="{backend}"' in app.get("/cart").text


def test_a_flash_shows_once_after_the_redirect(app: webtest.TestApp) -> None:
    response = add_to_cart(app, "mug")
    assert response.status_int == 302

    page = response.follow()
    assert flashes(page) == [("Added Enamel mug to your cart.", "flash flash-success")]
    assert flashes(app.get("/cart")) == []


def test_signing_in_regenerates_the_ids_and_welcomes_once(app: webtest.TestApp) -> None:
    app.get("/")
    add_to_cart(app, "tea")
    cart_before = app.cookies["cart"]

    response = sign_in(app)

    assert response.status_int == 302
    assert app.cookies["cart"] != cart_before
    page = response.follow()
    assert page.html.select_one("#signed-in-as").get_text() == "ada@example.com"
    assert flashes(page) == [("Welcome, Ada! You are signed in.", "flash flash-success")]
    # The data carried over to the new ids; the old id reaches nothing.
    assert visits(page) == 2
    assert cart_quantities(app) == {"Green tea, 100 g": 1}
    attacker = visitor(app)
    attacker.set_cookie("cart", cart_before)
    assert cart_quantities(attacker) == {}


def test_a_wrong_password_flashes_an_error(app: webtest.TestApp) -> None:
    response = sign_in(app, password="wrong")

    page = response.follow()
    assert page.request.path == "/login"
    assert flashes(page) == [("Wrong email or password.", "flash flash-error")]
    assert page.html.select_one("#signed-in-as") is None


def test_remember_me_sets_a_plain_cookie_that_prefills_the_form(app: webtest.TestApp) -> None:
    response = sign_in(app, remember=True)

    remember = next(
        h for h in response.headers.getall("Set-Cookie") if h.startswith("remember_email=")
    )
    assert "Max-Age=2592000" in remember
    assert "HttpOnly" in remember
    assert app.get("/login").forms["login-form"]["email"].value == "ada@example.com"


def test_signing_in_without_remember_me_deletes_the_cookie(app: webtest.TestApp) -> None:
    sign_in(app, remember=True)
    sign_in(app, remember=False)
    assert "remember_email" not in app.cookies


def test_signing_out_removes_everything_but_the_remembered_email(app: webtest.TestApp) -> None:
    sign_in(app, remember=True).follow()
    add_to_cart(app, "tea")
    cart_cookie = app.cookies["cart"]
    home = app.get("/")

    response = home.forms[0].submit()

    assert cookie_names(response) == ["cart", "session"]
    page = response.follow()
    assert flashes(page) == [
        ("You are signed out; your session and cart are gone.", "flash flash-info")
    ]
    assert page.html.select_one("#signed-in-as") is None
    assert visits(page) == 1
    assert set(app.cookies) == {"session", "remember_email"}
    assert cart_quantities(app) == {}
    # A copy of the cart cookie taken before signing out reaches nothing.
    replay = visitor(app)
    replay.set_cookie("cart", cart_cookie)
    assert cart_quantities(replay) == {}
    # What the visitor asked to be remembered prefills the next sign-in.
    form = app.get("/login").forms["login-form"]
    assert form["email"].value == "ada@example.com"
    assert form["remember"].checked


def test_keep_me_signed_in_makes_both_sessions_last_thirty_days(app: webtest.TestApp) -> None:
    app.get("/")
    add_to_cart(app, "tea")

    response = sign_in(app, stay=True)

    for name in ("session", "cart"):
        assert "Max-Age=2592000" in set_cookie_header(response, name)
    # The choice is stored with the session: a later save keeps the lifetime.
    home = app.get("/")
    assert "Max-Age=2592000" in set_cookie_header(home, "session")
    assert visits(home) == 2


def test_without_keep_me_signed_in_the_cookies_end_with_the_browser(
    app: webtest.TestApp,
) -> None:
    add_to_cart(app, "tea")
    sign_in(app, stay=True)

    response = sign_in(app, stay=False)

    for name in ("session", "cart"):
        header = set_cookie_header(response, name)
        assert "Max-Age" not in header and "expires" not in header.lower()
    assert "Max-Age" not in set_cookie_header(app.get("/"), "session")


def test_signing_out_ends_a_kept_session(app: webtest.TestApp) -> None:
    add_to_cart(app, "tea")
    sign_in(app, stay=True).follow()

    response = app.get("/").forms[0].submit()

    assert "Max-Age" not in set_cookie_header(response, "session")  # the goodbye flash's session
    assert "Max-Age=0" in set_cookie_header(response, "cart")


def test_a_form_without_the_session_token_is_refused(app: webtest.TestApp) -> None:
    app.get("/cart")
    app.post("/cart/add", {"product": "tea"}, status=403)
    app.post("/logout", {"csrf_token": "forged"}, status=403)
    assert cart_quantities(app) == {}


def test_a_token_signs_in_one_request_without_any_cookie(app: webtest.TestApp) -> None:
    page = app.get("/whoami", {"token": "ada-demo-token"})

    assert "ada@example.com" in page.html.select_one("#identity").get_text()
    assert "API token" in page.html.select_one("#identity").get_text()
    assert page.headers.getall("Set-Cookie") == []
    assert "anonymous" in app.get("/whoami").html.select_one("#identity").get_text()


def test_the_api_accepts_a_bearer_header_and_sets_no_cookie(app: webtest.TestApp) -> None:
    response = app.get("/api/whoami", headers={"Authorization": "Bearer alan-demo-token"})

    assert response.json == {"email": "alan@example.com", "authenticated_by": "token"}
    assert response.headers.getall("Set-Cookie") == []


def test_the_api_without_a_token_is_unauthorized(app: webtest.TestApp) -> None:
    response = app.get("/api/whoami", {"token": "not-a-token"}, status=401)
    assert response.json == {"email": None, "authenticated_by": None}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_api_recognises_a_signed_in_browser(app: webtest.TestApp) -> None:
    sign_in(app)
    assert app.get("/api/whoami").json == {"email": "ada@example.com", "authenticated_by": "cookie"}


def test_the_sessions_page_shows_backends_and_cookie_attributes(app: webtest.TestApp) -> None:
    sign_in(app, remember=True)
    add_to_cart(app, "tea")

    page = app.get("/sessions").html
    default, cart, remember = (
        page.select_one(f"#report-{n}") for n in ("session", "cart", "remember_email")
    )

    assert default.select_one(".backend").get_text() == "securecookie"
    assert cart.select_one(".backend").get_text() == app.app.config["sample_app"]["cart_backend"]
    attributes = [span.get_text() for span in default.select(".attribute")]
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= set(attributes)
    assert "Max-Age=2592000" in remember.get_text()
    assert "email" in default.get_text()
    assert "lines" in cart.get_text()


def fingerprint(app: webtest.TestApp) -> str:
    return str(app.get("/sessions").html.select_one("#report-cart .fingerprint code").get_text())


def test_the_inspector_shows_the_cart_id_change_at_sign_in(app: webtest.TestApp) -> None:
    cell = app.get("/sessions").html.select_one("#report-cart .fingerprint")
    assert "none yet" in cell.get_text()
    add_to_cart(app, "tea")
    before = fingerprint(app)
    assert before == fingerprint(app)

    sign_in(app)

    after = fingerprint(app)
    assert after != before
    for shown in (before, after):
        assert re.fullmatch(r"[0-9a-f]{8}", shown)
        assert shown not in app.cookies["cart"]
    # The default session keeps its data in the cookie: it has no id to show.
    assert app.get("/sessions").html.select_one("#report-session .fingerprint") is None


def test_the_inspector_shows_each_session_lifetime(app: webtest.TestApp) -> None:
    page = app.get("/sessions").html
    assert page.select_one("#report-session .lifetime").get_text() == "as configured"
    add_to_cart(app, "tea")

    sign_in(app, stay=True)

    page = app.get("/sessions").html
    for name in ("session", "cart"):
        report = page.select_one(f"#report-{name}")
        assert "30 days after its last use" in report.select_one(".lifetime").get_text()
        assert "Max-Age=2592000" in [span.get_text() for span in report.select(".attribute")]

    sign_in(app, stay=False)

    lifetime = app.get("/sessions").html.select_one("#report-session .lifetime").get_text()
    assert lifetime.startswith("until the browser closes")


def test_an_unknown_url_gets_a_page_in_the_shop_style(app: webtest.TestApp) -> None:
    sign_in(app)

    response = app.get("/no/such/page?x=<b>", status=404)

    assert response.content_type == "text/html"
    page = response.html
    assert page.select_one("h1").get_text() == "Page not found"
    assert "/no/such/page" in page.select_one("#not-found").get_text()
    assert page.select_one("a.brand") is not None  # the shop's header
    assert response.headers.getall("Set-Cookie") == []
    assert "<b>" not in response.text


def test_a_page_that_reads_no_session_opens_none(app: webtest.TestApp) -> None:
    sign_in(app)
    response = app.get("/about")
    assert response.headers.getall("Set-Cookie") == []
    # The store adds Vary: Cookie as soon as any session is opened.
    assert "Vary" not in response.headers


def test_the_environment_picks_the_cart_backend() -> None:
    assert config_from_environment({})["sample_app"] == {"cart_backend": "file"}
    config = config_from_environment({"SAMPLE_CART_BACKEND": "redis"})
    assert config["sample_app"] == {"cart_backend": "redis"}
    assert config["tipsessions"]["redis"]["url"].startswith("redis://")
    assert config["tipsessions"]["default_backend"] == "securecookie"


def test_an_unknown_cart_backend_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="SAMPLE_CART_BACKEND='mongo'"):
        config_from_environment({"SAMPLE_CART_BACKEND": "mongo"})


def test_python_m_sample_app_documents_its_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sample_app", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--port" in result.stdout


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def server_environment(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The variables that point the sample's cart at the test server."""
    if backend == "memcache":
        servers = request.getfixturevalue("memcached_servers")
        return {"TIPSESSIONS_MEMCACHE_SERVERS": ",".join(servers)}
    if backend == "redis":
        return {"TIPSESSIONS_REDIS_URL": request.getfixturevalue("redis_url")}
    # The fixture exports DATASTORE_EMULATOR_HOST and the project variables.
    request.getfixturevalue("datastore_emulator")
    return {}


@contextmanager
def sample_process(environment: dict[str, str]) -> Iterator[str]:
    """``python -m sample_app --port 0`` running; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sample_app", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"http://[\d.]+:\d+", banner)
        assert match, f"no address in {banner!r}"
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize("backend", ["memcache", "redis", "datastore"])
def test_the_environment_moves_the_cart_to_a_server(
    backend: str, request: pytest.FixtureRequest
) -> None:
    environment = {"SAMPLE_CART_BACKEND": backend, **server_environment(backend, request)}
    # A real client: its own cookie jar, and no proxy between it and loopback.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor()
    )
    with sample_process(environment) as base_url:
        with opener.open(base_url + "/cart", timeout=30) as response:
            page = response.read().decode()
        assert f'backend="{backend}"' in page
        form = urllib.parse.urlencode({"product": "tea", "csrf_token": CSRF_FIELD.findall(page)[0]})
        with opener.open(base_url + "/cart/add", data=form.encode(), timeout=30) as response:
            cart = response.read().decode()

    assert "Added Green tea, 100 g to your cart." in cart
    assert 'class="quantity">1<' in cart


FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def devices(app: webtest.TestApp) -> list[tuple[str, bool]]:
    """(label, this device) of each row of "Your devices"."""
    page = app.get("/devices")
    rows = page.html.select("tr.device")
    labels = [row.select_one(".label").get_text(" ", strip=True).split(" ·")[0] for row in rows]
    return [(label, "current" in row["class"]) for label, row in zip(labels, rows, strict=True)]


def test_your_devices_lists_every_browser_signed_in(app: webtest.TestApp) -> None:
    laptop = webtest.TestApp(app.app, extra_environ={"HTTP_USER_AGENT": FIREFOX_ON_LINUX})
    phone = webtest.TestApp(app.app, extra_environ={"HTTP_USER_AGENT": SAFARI_ON_IPHONE})
    sign_in(laptop)
    sign_in(phone)

    assert sorted(devices(laptop)) == [("Firefox on Linux", True), ("Safari on iOS", False)]
    assert sorted(devices(phone)) == [("Firefox on Linux", False), ("Safari on iOS", True)]


def sign_out_form(page: webtest.TestResponse, fingerprint: str) -> Any:
    """The "Sign out" form of one row of "Your devices"."""
    return next(
        form
        for form in page.forms.values()
        if "fingerprint" in form.fields and form["fingerprint"].value == fingerprint
    )


def test_signing_out_one_device_ends_it_there(app: webtest.TestApp) -> None:
    laptop, phone = visitor(app), visitor(app)
    sign_in(laptop)
    sign_in(phone)
    page = laptop.get("/devices")
    (other,) = [row["data-fingerprint"] for row in page.html.select("tr.device:not(.current)")]

    result = sign_out_form(page, other).submit().follow()

    assert flashes(result) == [("That device is signed out.", "flash flash-success")]
    assert len(devices(laptop)) == 1
    assert phone.get("/").html.select_one("#signed-in-as") is None


def test_signing_out_this_device_from_the_list_signs_out(app: webtest.TestApp) -> None:
    laptop = visitor(app)
    sign_in(laptop)
    page = laptop.get("/devices")
    (mine,) = [row["data-fingerprint"] for row in page.html.select("tr.device.current")]
    home = sign_out_form(page, mine).submit().follow()
    assert flashes(home) == [("You are signed out.", "flash flash-info")]
    assert home.html.select_one("#signed-in-as") is None


def test_a_password_change_signs_out_every_other_device(app: webtest.TestApp) -> None:
    here, elsewhere, stranger = visitor(app), visitor(app), visitor(app)
    sign_in(here)
    sign_in(elsewhere)
    form = stranger.get("/login").forms["login-form"]
    form["email"], form["password"] = "alan@example.com", "turing"
    form.submit()

    form = here.get("/devices").forms["password-form"]
    form["current"], form["new"] = "lovelace", "ada-1843"
    page = form.submit().follow()

    assert flashes(page) == [
        ("Password changed; signed out 1 other device.", "flash flash-success")
    ]
    assert elsewhere.get("/").html.select_one("#signed-in-as") is None
    assert here.get("/").html.select_one("#signed-in-as").get_text() == "ada@example.com"
    assert stranger.get("/").html.select_one("#signed-in-as").get_text() == "alan@example.com"
    assert flashes(sign_in(elsewhere).follow()) == [
        ("Wrong email or password.", "flash flash-error")
    ]
    assert "Welcome" in sign_in(elsewhere, password="ada-1843").follow().text


def test_a_wrong_current_password_changes_nothing(app: webtest.TestApp) -> None:
    here, elsewhere = visitor(app), visitor(app)
    sign_in(here)
    sign_in(elsewhere)
    form = here.get("/devices").forms["password-form"]
    form["current"], form["new"] = "wrong", "ada-1843"
    page = form.submit().follow()
    assert flashes(page) == [("Your current password was not right.", "flash flash-error")]
    assert len(devices(here)) == 2


def test_your_devices_asks_a_visitor_to_sign_in(app: webtest.TestApp) -> None:
    page = app.get("/devices").follow()
    assert flashes(page) == [("Sign in to see your devices.", "flash flash-info")]
