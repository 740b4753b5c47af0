"""Regenerate docs/screenshots/*.png: the demo's pages in Chromium, on fresh demo data.

    .venv/bin/python scripts/screenshots.py            # or: make screenshots

Serves the demo project (DEBUG on, the built-in sandbox) from this process on a free
port, with a throwaway SQLite database and the `setup_demo` users, then drives Debian's
Chromium through Playwright: the home page; as `demo`, linking two of the three cars of
3-vehicles@smartcar.com, which shows the sandbox's consent screen and then /vehicles/;
as `staff`, the admin's list of Smartcar accounts, searched by the demo user's email,
after the "Refresh tokens now" action. tests/browser/test_screenshots.py
runs `capture` against the test suite's live server, so the script cannot rot unseen.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Small PNGs that still read well in a README.
VIEWPORT = {"width": 1000, "height": 700}
TIMEOUT_MS = 15_000
# Names of the PNGs, in the order `capture` writes them.
SCREENSHOTS = ("home.png", "consent.png", "vehicles.png", "admin.png")
# setup_demo's users (project/management/commands/setup_demo.py).
DEMO_USER = ("demo", "demo-password")
DEMO_EMAIL = "demo@example.com"
STAFF_USER = ("staff", "staff-password")
OWNER_EMAIL = "3-vehicles@smartcar.com"


def _sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.locator("form [type=submit]").click()


def capture(browser: Browser, base_url: str, out_dir: Path) -> list[Path]:
    """Take the README's screenshots from the site at `base_url`; returns the PNGs' paths.

    Needs setup_demo's users, no account linked yet, and the sandbox serving Connect.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in SCREENSHOTS]
    home, consent, vehicles, admin = paths

    owner = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    owner.set_default_timeout(TIMEOUT_MS)
    page = owner.new_page()
    page.goto("/")
    page.screenshot(path=home, full_page=True)

    page.goto("/accounts/login/?next=/vehicles/")
    _sign_in(page, *DEMO_USER)
    page.locator("a#connect-vehicle").click()
    page.locator("button#continue-button").click()
    page.locator("button#CHEVROLET.brand-list-item").click()
    page.locator("input#username").fill(OWNER_EMAIL)
    page.locator("input#password").fill("any password works in test mode")
    page.locator("button#sign-in-button").click()
    page.locator(".page-content input[name=vehicle]").nth(1).uncheck()
    # The whole dialog: Allow and Deny sit below the first 700 pixels.
    page.screenshot(path=consent, full_page=True)
    page.locator("button#approval-button").click()
    page.locator(".messages .success").wait_for()
    page.screenshot(path=vehicles, full_page=True)
    owner.close()

    staff = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    staff.set_default_timeout(TIMEOUT_MS)
    page = staff.new_page()
    page.goto("/admin/vehicle_auth/smartcaraccount/")
    _sign_in(page, *STAFF_USER)
    # The table needs the width of the app list: fold it away, as staff can.
    page.locator("#toggle-nav-sidebar").click()
    page.locator("input#searchbar").fill(DEMO_EMAIL)
    page.locator("input#searchbar").press("Enter")
    page.locator("#result_list input.action-select").first.check()
    page.locator("select[name=action]").select_option(label="Refresh tokens now")
    page.locator("button[name=index]").click()
    page.locator(".messagelist .success").wait_for()
    page.screenshot(path=admin, full_page=True)
    staff.close()
    return paths


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_demo(database: Path) -> tuple[str, object]:
    """Set up the demo project on `database` and serve it from a thread; returns its URL."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    # Real environment variables win over a developer's .env: these make it the demo on
    # the sandbox, whatever that file says.
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{database}",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SMARTCAR_CLIENT_ID": "",
            "SMARTCAR_REDIRECT_URI": f"{base_url}/vehicles/callback/",
            "VEHICLE_AUTH_ENCRYPTION_KEYS": "",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.db import connections
    from django.test.testcases import LiveServerThread

    django.setup()
    # The admin asks for /favicon.ico; its 404 is no news.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    call_command("migrate", verbosity=0)
    call_command("setup_demo", stdout=io.StringIO())
    connections.close_all()  # the server's threads open their own
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=port)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    return base_url, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=CHROMIUM, help="Chromium's executable")
    args = parser.parse_args()
    if not os.access(args.chromium, os.X_OK):
        parser.error(f"Chromium not found at {args.chromium}: apt-get install chromium")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir:
        base_url, server = _serve_demo(Path(workdir) / "demo.sqlite3")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
                )
                try:
                    paths = capture(browser, base_url, args.out)
                finally:
                    browser.close()
        finally:
            server.terminate()  # type: ignore[attr-defined]
    for path in paths:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
