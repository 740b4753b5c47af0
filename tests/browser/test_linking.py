"""Linking a car the way its owner does: our pages, the sandbox's Connect screens, ours again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import (
    THREE_CARS,
    Page,
    expect,
    listed_vehicles,
    sign_in,
    sign_in_to_connect,
    vehicle_boxes,
)
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle
from vehicle_auth.sandbox import data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def as_listed(vehicle: Vehicle) -> str:
    """How /vehicles/ writes a car."""
    return f"{vehicle.year} {vehicle.make.title()} {vehicle.model}"


def test_user_links_two_of_three_vehicles(page: Page, user: Any, smartcar_sandbox: Any) -> None:
    sign_in(page, user.username)
    expect(page.get_by_text("You haven't connected a vehicle yet.")).to_be_visible()
    page.locator("a#connect-vehicle").click()

    expect(page.locator("h1")).to_contain_text("uses Smartcar to connect to your vehicle")
    sign_in_to_connect(page, email=THREE_CARS)
    boxes = vehicle_boxes(page)
    expect(boxes).to_have_count(3)
    for index in range(3):
        expect(boxes.nth(index)).to_be_checked()  # Connect offers every car ticked
    boxes.nth(1).uncheck()
    kept = {boxes.nth(0).get_attribute("value"), boxes.nth(2).get_attribute("value")}
    dropped = boxes.nth(1).get_attribute("value")
    page.locator("button#approval-button").click()

    expect(page).to_have_url(smartcar_sandbox.live_server_url + "/vehicles/")
    expect(page.locator(".messages .success")).to_have_text(
        "Your Smartcar account is connected with 2 vehicles."
    )
    account = SmartcarAccount.objects.get(user=user)
    assert set(account.vehicles.values_list("smartcar_id", flat=True)) == kept
    assert dropped not in kept
    assert sorted(listed_vehicles(page)) == sorted(as_listed(v) for v in account.vehicles.all())
    expect(page.locator("article.vehicle-auth-account h2")).to_have_text(
        "Smartcar account with 2 vehicles"
    )


def test_deny_leaves_nothing_linked(page: Page, user: Any, smartcar_sandbox: Any) -> None:
    sign_in(page, user.username)
    page.locator("a#connect-vehicle").click()
    sign_in_to_connect(page, email=THREE_CARS)
    expect(vehicle_boxes(page)).to_have_count(3)
    page.locator("button#deny-button").click()

    expect(page.locator("h1")).to_have_text("No vehicle was connected")
    expect(page.locator("main")).to_contain_text("You chose not to share your vehicle.")
    expect(page.get_by_role("link", name="Try again")).to_have_attribute("href", "/vehicles/login/")
    assert not SmartcarAccount.objects.exists()
    assert AuthorizationAttempt.objects.get().outcome == AuthorizationAttempt.Outcome.DENIED

    page.get_by_role("link", name="Back to my vehicles").click()
    expect(page.get_by_text("You haven't connected a vehicle yet.")).to_be_visible()


def test_incompatible_vehicle_is_named(page: Page, user: Any, smartcar_sandbox: Any) -> None:
    car = data.vehicles_for(data.INCOMPATIBLE_EMAIL, "CHEVROLET")[0]
    sign_in(page, user.username)
    page.locator("a#connect-vehicle").click()
    sign_in_to_connect(page, email=data.INCOMPATIBLE_EMAIL)

    expect(page.locator("h1")).to_have_text("This vehicle isn't compatible")
    explanation = page.locator("main p").first
    expect(explanation).to_contain_text(str(car.year))
    expect(explanation).to_contain_text(car.model)
    expect(explanation).to_contain_text("can't be connected")
    assert not SmartcarAccount.objects.exists()


def test_relinking_updates_the_account_and_disconnect_removes_it(
    page: Page, user: Any, smartcar_sandbox: Any
) -> None:
    sign_in(page, user.username)
    page.locator("a#connect-vehicle").click()
    sign_in_to_connect(page, email=THREE_CARS)
    expect(vehicle_boxes(page)).to_have_count(3)
    page.locator("button#approval-button").click()
    expect(page.locator(".messages .success")).to_contain_text("connected with 3 vehicles")
    account = SmartcarAccount.objects.get(user=user)

    # approval_prompt=auto would skip the grant screen for a grant already given; a relink
    # that changes the cars asks for the prompt.
    page.goto("/vehicles/login/?force_prompt=1")
    sign_in_to_connect(page, email=THREE_CARS)
    boxes = vehicle_boxes(page)
    boxes.nth(0).uncheck()
    boxes.nth(1).uncheck()
    kept = boxes.nth(2).get_attribute("value")
    page.locator("button#approval-button").click()

    expect(page.locator(".messages .success")).to_have_text(
        "Your Smartcar account is connected with 1 vehicle."
    )
    assert SmartcarAccount.objects.get(user=user).pk == account.pk  # updated, not duplicated
    vehicle = Vehicle.objects.get(account=account)
    assert vehicle.smartcar_id == kept
    assert listed_vehicles(page) == [as_listed(vehicle)]
    expect(page.locator("article.vehicle-auth-account")).to_have_count(1)

    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".messages .success")).to_have_text("Your vehicle was disconnected.")
    expect(page.locator("article.vehicle-auth-account")).to_have_count(0)
    expect(page.get_by_text("You haven't connected a vehicle yet.")).to_be_visible()
    account.refresh_from_db()
    assert account.status == SmartcarAccount.Status.DISCONNECTED
    assert smartcar_sandbox.request_count("disconnect", status=200) == 1
