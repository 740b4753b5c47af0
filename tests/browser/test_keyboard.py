"""Keyboard only: Tab, Enter and Space take an owner through the whole connect flow.

`tab_to` asserts at every Tab stop that the focused element shows a visible focus
indicator (a 2 px or wider outline on a `:focus-visible` element, inside the viewport).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import (
    PASSWORD,
    THREE_CARS,
    VEHICLES_URL,
    Page,
    expect,
    listed_vehicles,
    press_and_load,
    tab_to,
)
from vehicle_auth.models import SmartcarAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_connect_flow_with_the_keyboard_only(page: Page, user: Any, smartcar_sandbox: Any) -> None:
    keys = page.keyboard
    page.goto("/")
    # The first stop is the skip link, shown on focus, which jumps to the main content.
    tab_to(page, "a.skip-link")
    keys.press("Enter")
    assert page.evaluate("location.hash") == "#content"

    page.goto("/")
    tab_to(page, 'header a[href="/accounts/login/"]')
    press_and_load(page)
    tab_to(page, "input#id_username")
    keys.type(user.username)
    tab_to(page, "input#id_password")
    keys.type(PASSWORD)
    press_and_load(page)
    expect(page).to_have_url(VEHICLES_URL)

    tab_to(page, "a#connect-vehicle")
    press_and_load(page)
    # The sandbox's Connect screens.
    tab_to(page, "button#continue-button")
    press_and_load(page)
    tab_to(page, "input#brand-search")
    keys.type("chev")
    press_and_load(page)
    expect(page.locator(".brand-list-item")).to_have_count(1)
    tab_to(page, "button#CHEVROLET")
    press_and_load(page)
    tab_to(page, "input#username")
    keys.type(THREE_CARS)
    tab_to(page, "input#password")
    keys.type("secret")
    press_and_load(page)
    tab_to(page, "input#vehicle-1")
    keys.press("Space")
    expect(page.locator("input#vehicle-1")).not_to_be_checked()
    tab_to(page, "button#approval-button")
    press_and_load(page)

    # Back on our site.
    expect(page.locator(".messages .success")).to_contain_text("connected with 2 vehicles")
    assert len(listed_vehicles(page)) == 2
    tab_to(page, "form[action*=disconnect] button")
    press_and_load(page)
    expect(page.locator(".messages .success")).to_have_text("Your vehicle was disconnected.")
    assert SmartcarAccount.objects.get().status == SmartcarAccount.Status.DISCONNECTED
