"""Take the documentation's picture of the sample app in headless Chromium.

``python -m sample_app.screenshot docs/_static/sample-app.png`` serves the
app on a free loopback port, signs in, fills the cart and photographs the
front page; ``--devices docs/_static/devices.png`` also signs in from three
browsers and photographs "Your devices". The browser is Debian's
``chromium`` driven by Playwright; the end-to-end test launches it through
:func:`launch_chromium` and :func:`launch_browser` too, so both see the app
the same way.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from config.development import config as development
from sample_app.app import create_app
from sample_app.server import serve

#: Quiet, reproducible headless flags for containers: no sandbox (no user
#: namespaces there), no GPU, nothing that contacts the network by itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def launch_chromium(profile_dir: Path) -> Iterator[Any]:
    """A Playwright browser context on a fresh profile in ``profile_dir``.

    Uses the ``chromium`` on PATH; Playwright's own browser downloads are
    never needed.
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 760},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def launch_browser() -> Iterator[Any]:
    """A Playwright browser without a profile, for several devices side by side.

    Each ``browser.new_context()`` is a device of its own: its own cookies,
    and the User-Agent it is given.
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


#: What the devices of the "Your devices" picture say they are.
DEVICE_AGENTS = {
    "laptop": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "phone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "office": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
}


def new_device(browser: Any, user_agent: str | None = None) -> Any:
    """A page in a fresh context: one more device, with no cookie yet."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, user_agent=user_agent)
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page: Any, base_url: str, password: str = "lovelace") -> None:
    page.goto(base_url + "/login")
    page.fill("#email", "ada@example.com")
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base_url + "/")


@contextmanager
def running_sample(sessions_dir: Path) -> Iterator[str]:
    """The sample app on a free loopback port, its cart files in ``sessions_dir``."""
    config = copy.deepcopy(development)
    config["tipsessions"]["file"] = {"path": str(sessions_dir)}
    config["sample_app"] = {"cart_backend": "file"}
    server = serve(create_app(config), host="127.0.0.1", port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, name="sample-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def take(output: Path) -> None:
    """Photograph the front page after shopping and signing in."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        running_sample(Path(scratch) / "sessions") as base_url,
        launch_chromium(Path(scratch) / "profile") as browser,
    ):
        page = browser.pages[0] if browser.pages else browser.new_page()
        for product in ("tea", "mug", "tea"):
            page.goto(base_url + "/cart")
            page.click(f"#add-{product}")
        page.goto(base_url + "/")
        page.goto(base_url + "/login")
        page.fill("#email", "ada@example.com")
        page.fill("#password", "lovelace")
        page.click("#login-form button[type=submit]")
        page.wait_for_url(base_url + "/")
        page.screenshot(path=str(output))


def take_devices(output: Path) -> None:
    """Photograph "Your devices" with Ada signed in from three browsers."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        running_sample(Path(scratch) / "sessions") as base_url,
        launch_browser() as browser,
    ):
        pages = {name: new_device(browser, agent) for name, agent in DEVICE_AGENTS.items()}
        for name in ("office", "phone", "laptop"):
            sign_in(pages[name], base_url)
        pages["laptop"].goto(base_url + "/devices")
        pages["laptop"].screenshot(path=str(output))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sample_app.screenshot", description=__doc__)
    parser.add_argument("output", type=Path, help="where to write the front page's PNG")
    parser.add_argument("--devices", type=Path, help='where to write the "Your devices" PNG')
    args = parser.parse_args(argv)
    take(args.output)
    print(f"Wrote {args.output}")
    if args.devices:
        take_devices(args.devices)
        print(f"Wrote {args.devices}")


if __name__ == "__main__":
    main()
