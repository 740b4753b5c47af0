"""Fixtures of the browser tests: Chromium (through Playwright) against the live server.

`page` is a fresh browser context's page whose relative URLs go to pytest-django's live
server; `new_page(**context_options)` opens more (another user, a phone, no JavaScript).
A failing test leaves a full-page screenshot of each of its pages in `test-artifacts/`.

Without /usr/bin/chromium or Playwright the tests marked `browser` are skipped, with the
reason. With VEHICLE_AUTH_BROWSER_TESTS=required (set by .ci/run) a skip is an error and
a run in which no browser test passed fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_MISSING, PLAYWRIGHT_MISSING, REQUIRE_ENV

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Debian's Chromium, headless, and nothing that phones home (the tests also assert that
# every request of the pages goes to the live server).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The size of the README's screenshots, and a desktop as far as our CSS is concerned.
VIEWPORT = {"width": 1000, "height": 700}
# Every page answers in milliseconds: a missing element fails the test in 10 s, not 30.
TIMEOUT_MS = 10_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

_pages_key = pytest.StashKey[list["Page"]]()
_passed_key = pytest.StashKey[int]()


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return CHROMIUM_MISSING
    if importlib.util.find_spec("playwright") is None:
        return PLAYWRIGHT_MISSING
    return None


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").lower() == "required"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    reason = browser_unavailable() if browser_items else None
    if reason is None:
        return
    if _required():
        raise pytest.UsageError(f"{REQUIRE_ENV}=required, but: {reason}")
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and report.when in {"setup", "call"}:
        saved = _screenshot_pages(item)
        if saved:
            report.sections.append(("screenshots", "\n".join(saved)))
    if report.passed and report.when == "call" and item.get_closest_marker("browser"):
        item.session.stash[_passed_key] = item.session.stash.get(_passed_key, 0) + 1
    return report


def _screenshot_pages(item: pytest.Item) -> list[str]:
    name = re.sub(r"[^\w.-]+", "_", item.nodeid).strip("_")
    saved = []
    for index, page in enumerate(item.stash.get(_pages_key, [])):
        path = ARTIFACTS / f"{name}{f'-{index}' if index else ''}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as error:  # a closed or crashed page must not hide the failure
            saved.append(f"{path}: not saved ({error})")
        else:
            saved.append(str(path))
    return saved


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With browser tests required, a run in which none passed is a failure (CI's guard)."""
    if not _required() or exitstatus != pytest.ExitCode.OK:
        return
    if session.stash.get(_passed_key, 0) == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{REQUIRE_ENV}=required, but no browser test passed.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, launched once per test module.

    Not once per session: Playwright's sync API keeps an asyncio event loop running in the
    main thread for as long as it is started, and Django refuses ORM calls from a thread
    with a running loop (SynchronousOnlyOperation). Our ORM calls (factories, asserts,
    pytest-django's flush between tests) are plain synchronous code that merely shares the
    thread with that idle loop, so DJANGO_ALLOW_ASYNC_UNSAFE is set while Chromium runs,
    and only then: other test modules keep Django's check.
    """
    reason = browser_unavailable()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def new_page(
    browser: Browser, live_server: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """`new_page(**context_options)`: a page in a new browser context (its own cookies).

    Relative URLs in `page.goto()` go to the live server. Options are Playwright's
    `new_context` ones, e.g. `viewport={"width": 375, "height": 667}` or
    `java_script_enabled=False`.
    """
    contexts = []
    pages: list[Page] = []
    request.node.stash[_pages_key] = pages

    def open_page(**options: Any) -> Page:
        context = browser.new_context(
            **{"base_url": live_server.url, "viewport": VIEWPORT, **options}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """A desktop-sized page with JavaScript on, nobody signed in."""
    return new_page()
