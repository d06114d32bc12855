"""Take the documentation's picture of the sample app in headless Chromium.

``python -m sample_app.screenshot docs/_static/sample-app.png`` serves the
app on a free loopback port, signs in, fills the cart and photographs the
front page. The browser is Debian's ``chromium`` driven by Playwright; the
end-to-end test launches it through :func:`launch_chromium` too, so both see
the app the same way.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sample_app.screenshot", description=__doc__)
    parser.add_argument("output", type=Path, help="where to write the PNG")
    output = parser.parse_args(argv).output
    take(output)
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
