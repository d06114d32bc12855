"""The sample app in a real browser: headless Chromium driven by Playwright.

WebTest proves the HTTP exchange; only a browser proves that the cookies
work as a person experiences them: that Chromium accepts and sends them back,
that HttpOnly hides them from scripts, that SameSite is what the browser
records, and that a reload after signing out really shows a stranger's page.

The browser is Debian's ``chromium`` (Playwright's own browser downloads are
never used); the app runs in a real HTTP server thread on a free loopback
port.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sample_app import screenshot
from sample_app.screenshot import launch_chromium, running_sample


def require(available: bool, message: str) -> None:
    """Fail with the fix when the browser is missing: ``make test`` installs it."""
    if not available:
        pytest.fail(message)


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """The sample app served over real HTTP on a free loopback port."""
    with running_sample(tmp_path / "sessions") as url:
        yield url


@pytest.fixture
def chromium() -> None:
    require(importlib.util.find_spec("playwright") is not None, "pip install playwright")
    require(shutil.which("chromium") is not None, "apt-get install chromium (Debian's)")


@pytest.fixture
def browser(chromium: None, tmp_path: Path) -> Iterator[Any]:
    """Chromium on a fresh profile, so no cookie of an earlier run leaks in."""
    with launch_chromium(tmp_path / "profile") as context:
        yield context


def cookies_by_name(context: Any) -> dict[str, dict[str, Any]]:
    return {cookie["name"]: cookie for cookie in context.cookies()}


def flash_texts(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".flashes li").all_inner_texts()]


def cart_count(page: Any, base_url: str) -> str:
    page.goto(base_url + "/")
    return str(page.locator("#cart-count").inner_text())


def test_a_visitor_signs_in_shops_and_signs_out(base_url: str, browser: Any) -> None:
    page = browser.pages[0] if browser.pages else browser.new_page()

    page.goto(base_url + "/")
    assert page.locator("#visits").inner_text() == "1"

    # Sign in: the welcome flash shows once.
    page.goto(base_url + "/login")
    page.fill("#email", "ada@example.com")
    page.fill("#password", "lovelace")
    page.check("input[name=remember]")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base_url + "/")
    assert flash_texts(page) == ["Welcome, Ada! You are signed in."]
    assert "flash-success" in (page.locator(".flashes li").get_attribute("class") or "")
    assert page.locator("#signed-in-as").inner_text() == "ada@example.com"
    page.reload()
    assert flash_texts(page) == []

    # The cart fills across page loads.
    for product in ("tea", "mug", "tea"):
        page.goto(base_url + "/cart")
        page.click(f"#add-{product}")
        page.wait_for_url(base_url + "/cart")
    page.reload()
    assert page.locator("tr.cart-line .quantity").all_inner_texts() == ["2", "1"]
    assert cart_count(page, base_url) == "3"

    # The cookies the browser actually holds.
    cookies = cookies_by_name(browser)
    assert set(cookies) == {"session", "cart", "remember_email"}
    for cookie in cookies.values():
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/"
    assert cookies["session"]["expires"] == -1, "a browser-session cookie"
    assert cookies["remember_email"]["expires"] > 0
    assert cookies["remember_email"]["value"] == "ada@example.com"
    assert "tea" not in cookies["cart"]["value"], "the cart cookie holds only an id"
    assert page.evaluate("document.cookie") == "", "HttpOnly hides every cookie from scripts"

    # Sign out, then reload: everything is gone but the remembered email.
    page.click("button:has-text('Sign out')")
    page.wait_for_url(base_url + "/")
    assert flash_texts(page) == ["You are signed out; your session and cart are gone."]
    page.reload()
    assert flash_texts(page) == []
    assert page.locator("#signed-in-as").count() == 0
    assert page.locator(".account a:has-text('Sign in')").count() == 1
    assert page.locator("#cart-count").inner_text() == "0"
    assert set(cookies_by_name(browser)) == {"session", "remember_email"}
    page.goto(base_url + "/login")
    assert page.input_value("#email") == "ada@example.com"
    assert page.is_checked("input[name=remember]")


def test_a_token_request_leaves_no_cookie_in_the_browser(base_url: str, browser: Any) -> None:
    page = browser.pages[0] if browser.pages else browser.new_page()

    page.goto(base_url + "/whoami?token=ada-demo-token")

    assert "ada@example.com" in page.locator("#identity").inner_text()
    assert browser.cookies() == []
    page.goto(base_url + "/whoami")
    assert "anonymous" in page.locator("#identity").inner_text()


def sign_in(page: Any, base_url: str, stay: bool) -> None:
    page.goto(base_url + "/login")
    page.fill("#email", "ada@example.com")
    page.fill("#password", "lovelace")
    if stay:
        page.check("input[name=stay]")
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base_url + "/")


@pytest.mark.parametrize("stay", [True, False], ids=["kept", "not-kept"])
def test_keep_me_signed_in_survives_closing_the_browser(
    chromium: None, base_url: str, tmp_path: Path, stay: bool
) -> None:
    """Chromium itself decides what a restart keeps: Max-Age cookies, not session ones."""
    profile = tmp_path / "profile"
    with launch_chromium(profile) as browser:
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.goto(base_url + "/cart")
        page.click("#add-tea")
        page.wait_for_url(base_url + "/cart")
        sign_in(page, base_url, stay)
        cookies = cookies_by_name(browser)
        thirty_days = time.time() + 30 * 24 * 3600
        for name in ("session", "cart"):
            if stay:
                assert abs(cookies[name]["expires"] - thirty_days) < 3600, name
            else:
                assert cookies[name]["expires"] == -1, name

    with launch_chromium(profile) as browser:
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.goto(base_url + "/")
        signed_in = page.locator("#signed-in-as")
        if stay:
            assert signed_in.inner_text() == "ada@example.com"
            assert page.locator("#cart-count").inner_text() == "1"
        else:
            assert signed_in.count() == 0
            assert page.locator("#cart-count").inner_text() == "0"


@pytest.fixture
def several_devices(chromium: None) -> Iterator[Any]:
    """One Chromium; each ``new_device(browser)`` is a device with cookies of its own."""
    with screenshot.launch_browser() as browser:
        yield browser


def test_your_devices_signs_out_one_and_then_all_others_after_a_password_change(
    base_url: str, several_devices: Any
) -> None:
    laptop, phone, office = (
        screenshot.new_device(several_devices, screenshot.DEVICE_AGENTS[name])
        for name in ("laptop", "phone", "office")
    )
    for page in (office, phone, laptop):
        screenshot.sign_in(page, base_url)
    phone.goto(base_url + "/devices")
    phone_fingerprint = phone.locator("tr.device.current").get_attribute("data-fingerprint")

    laptop.goto(base_url + "/devices")
    labels = [text.split(" ·")[0] for text in laptop.locator("tr.device .label").all_inner_texts()]
    assert sorted(labels) == ["Chrome on Linux", "Firefox on Windows", "Safari on iOS"]
    assert laptop.locator("tr.device.current .label").inner_text().startswith("Chrome on Linux")

    # Sign out one device: the phone.
    laptop.click(f"#sign-out-{phone_fingerprint}")
    laptop.wait_for_url(base_url + "/devices")
    assert flash_texts(laptop) == ["That device is signed out."]
    assert laptop.locator("tr.device").count() == 2
    phone.goto(base_url + "/")
    assert phone.locator("#signed-in-as").count() == 0

    # Change the password and sign out every other device: the office.
    laptop.fill("#current", "lovelace")
    laptop.fill("#new", "ada-1843")
    assert laptop.is_checked("#password-form input[name=sign_out_others]")
    laptop.click("#password-form button[type=submit]")
    laptop.wait_for_url(base_url + "/devices")
    assert flash_texts(laptop) == ["Password changed; signed out 1 other device."]
    assert laptop.locator("tr.device").count() == 1
    office.goto(base_url + "/")
    assert office.locator("#signed-in-as").count() == 0
    laptop.goto(base_url + "/")
    assert laptop.locator("#signed-in-as").inner_text() == "ada@example.com"
