"""Every page of the flow, ours and the sandbox's: readable, labelled, offline, phone-sized, no JS.

`walk` goes through every page a site user can meet while linking a car (signed out,
signing in, Connect's screens, linked, denied, a forged callback, a broken Connect link)
and checks each one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.helpers import (
    PASSWORD,
    THREE_CARS,
    VEHICLES_URL,
    Page,
    audit,
    expect,
    listed_vehicles,
    sign_in,
    sign_in_to_connect,
    vehicle_boxes,
)
from vehicle_auth.models import SmartcarAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True}
# What the walk visits; a test that checks each page also checks it saw them all.
PAGES_WALKED = 17


def walk(page: Page, user: Any, check: Callable[[Page], None]) -> None:
    """Link two of three cars, then deny a second trip; `check(page)` on every page."""
    page.goto("/")
    check(page)  # home, signed out
    page.locator("header").get_by_role("link", name="Sign in").click()
    expect(page.get_by_label("Username")).to_be_visible()
    check(page)  # our sign-in form
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(VEHICLES_URL)
    check(page)  # /vehicles/, nothing linked
    page.locator("a#connect-vehicle").click()

    expect(page.locator("button#continue-button")).to_be_visible()
    check(page)  # Connect: preamble
    page.locator("button#continue-button").click()
    expect(page.locator("input#brand-search")).to_be_visible()
    check(page)  # Connect: brand list
    page.locator("input#brand-search").fill("no such brand")
    page.locator("input#brand-search").press("Enter")
    expect(page.get_by_text("No brand matches")).to_be_visible()
    check(page)  # Connect: an empty search
    page.locator("input#brand-search").fill("chev")
    page.locator("input#brand-search").press("Enter")
    expect(page.locator(".brand-list-item")).to_have_count(1)
    check(page)  # Connect: the search's result
    page.locator("button#CHEVROLET.brand-list-item").click()
    expect(page.locator("input#username")).to_be_visible()
    check(page)  # Connect: the brand's login
    page.locator("input#username").fill(THREE_CARS)
    page.locator("input#password").fill("secret")
    page.locator("button#sign-in-button").click()
    boxes = vehicle_boxes(page)
    check(page)  # Connect: grant
    boxes.nth(1).uncheck()
    page.locator("button#approval-button").click()

    expect(page.locator(".messages .success")).to_contain_text("connected with 2 vehicles")
    assert len(listed_vehicles(page)) == 2
    check(page)  # /vehicles/ with two cars and a message
    page.goto("/")
    check(page)  # home, signed in
    page.locator("main").get_by_role("link", name="Connect a vehicle").click()
    sign_in_to_connect(page, email="2-vehicles@smartcar.com")
    expect(vehicle_boxes(page)).to_have_count(2)
    check(page)  # Connect: grant with the other account's cars
    page.locator("button#deny-button").click()
    expect(page.locator("h1")).to_have_text("No vehicle was connected")
    check(page)  # our Connect error page
    page.goto("/vehicles/callback/?state=forged")
    expect(page.locator("h1")).to_have_text("This link can't be used")
    check(page)  # our invalid-state page
    page.goto("/sandbox/oauth/authorize")
    expect(page.locator("#error-message")).to_contain_text("client_id")
    check(page)  # Connect's own error page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    check(page)  # our sign-in form with an error
    page.locator("header").get_by_role("button", name="Sign out").click()
    expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()
    check(page)  # home again, signed out


def test_pages_are_readable_labelled_and_semantic(
    page: Page, user: Any, smartcar_sandbox: Any
) -> None:
    problems: list[str] = []
    visited: list[str] = []

    def check(current: Page) -> None:
        visited.append(current.url)
        problems.extend(audit(current))

    walk(page, user, check)
    assert len(visited) == PAGES_WALKED
    assert problems == []


def test_pages_fit_a_phone(new_page: Callable[..., Page], user: Any, smartcar_sandbox: Any) -> None:
    too_wide: list[str] = []
    visited: list[str] = []

    def check(current: Page) -> None:
        visited.append(current.url)
        layout = current.evaluate(
            """() => ({
              viewport: innerWidth,
              content: document.documentElement.scrollWidth,
              font: parseFloat(getComputedStyle(document.body).fontSize),
            })"""
        )
        # A 375 px layout viewport means the page asked for device-width (no zoomed-out
        # desktop page), and nothing may stick out sideways.
        if layout != {**layout, "viewport": 375} or layout["content"] > 375 or layout["font"] < 16:
            too_wide.append(f"{current.url}: {layout}")

    walk(new_page(**PHONE), user, check)
    assert len(visited) == PAGES_WALKED
    assert too_wide == []


def test_no_request_leaves_the_site(
    page: Page, user: Any, live_server: Any, smartcar_sandbox: Any
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    walk(page, user, lambda current: None)
    assert len(requested) >= PAGES_WALKED
    site = urlsplit(live_server.url).netloc
    assert [url for url in requested if urlsplit(url).netloc != site] == []


def test_every_page_works_without_javascript(
    new_page: Callable[..., Page], user: Any, smartcar_sandbox: Any
) -> None:
    page = new_page(java_script_enabled=False)
    walk(page, user, lambda current: None)
    assert SmartcarAccount.objects.get().vehicles.count() == 2

    sign_in(page, user.username)
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".messages .success")).to_have_text("Your vehicle was disconnected.")
    assert SmartcarAccount.objects.get().status == SmartcarAccount.Status.DISCONNECTED


def test_the_default_base_template_passes_too(
    new_page: Callable[..., Page],
    user: Any,
    settings: Any,
    link_account: Callable[..., Any],
    smartcar_sandbox: Any,
) -> None:
    """A host project without VEHICLE_AUTH_BASE_TEMPLATE gets vehicle_auth/base.html."""
    settings.VEHICLE_AUTH_BASE_TEMPLATE = "vehicle_auth/base.html"
    link_account(user, email=THREE_CARS)
    page = new_page(**PHONE)
    sign_in(page, user.username)
    expect(page.locator("header.site")).to_have_count(0)  # not the demo's layout
    assert len(listed_vehicles(page)) == 3
    problems = audit(page)

    page.locator("a#connect-vehicle").click()
    sign_in_to_connect(page, email="2-vehicles@smartcar.com")
    vehicle_boxes(page)
    page.locator("button#deny-button").click()
    expect(page.locator("h1")).to_have_text("No vehicle was connected")
    problems += audit(page)
    page.goto("/vehicles/callback/?state=forged")
    expect(page.locator("h1")).to_have_text("This link can't be used")
    problems += audit(page)

    page.goto("/vehicles/")
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".messages .success")).to_have_text("Your vehicle was disconnected.")
    problems += audit(page)
    assert problems == []
