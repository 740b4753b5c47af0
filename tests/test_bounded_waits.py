"""No user request waits on Smartcar longer than VEHICLE_AUTH_REQUEST_TIMEOUT.

Each test makes the sandbox hang (or crawl) and measures the whole request with
time.monotonic(). The upper bound is generous (the bound + 2 s) because it is a
correctness check, not a benchmark: without the deadline these requests would wait for the
hang to end (30 s here, 310 s with the SDK's own timeout against a real Smartcar).
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from vehicle_auth import call_vehicle, get_vehicle
from vehicle_auth.exceptions import SmartcarUnavailable
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount

pytestmark = pytest.mark.django_db(transaction=True)

BOUND = 1  # VEHICLE_AUTH_REQUEST_TIMEOUT in these tests, seconds
SLACK = 2  # what thread start-up, the test client and a loaded CI machine may add
HANG = 30  # longer than any test may take: a test that waits for it fails loudly


@pytest.fixture(autouse=True)
def bounded(settings) -> None:
    settings.VEHICLE_AUTH_REQUEST_TIMEOUT = BOUND


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started


def callback_url(client: Client, sandbox, email: str = "owner@example.com") -> str:
    location = client.get("/vehicles/login/")["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    return "/vehicles/callback/?" + urlencode(
        {"code": sandbox.issue_code(email=email), "state": state}
    )


@pytest.mark.parametrize("endpoint", ["token", "vehicles", "attributes"])
def test_the_callback_gives_up_on_a_hanging_smartcar_in_time(
    endpoint, user_client, smartcar_sandbox
) -> None:
    url = callback_url(user_client, smartcar_sandbox)
    smartcar_sandbox.inject(endpoint, hang=HANG)

    with Stopwatch() as watch:
        response = user_client.get(url)

    assert watch.elapsed < BOUND + SLACK
    assert response.status_code == 502
    assert AuthorizationAttempt.objects.get().error_code == "timeout"
    assert not SmartcarAccount.objects.exists()
    assert smartcar_sandbox.wait_until_holding(1, timeout=0)  # the hang really happened


def test_the_bound_covers_the_whole_request_not_each_call(user_client, smartcar_sandbox) -> None:
    # Three round trips (token; user + first page; attributes) of 0.45 s each: every call
    # is well within the bound, their sum is not.
    url = callback_url(user_client, smartcar_sandbox)
    smartcar_sandbox.inject("*", latency=0.45)

    with Stopwatch() as watch:
        response = user_client.get(url)

    assert watch.elapsed < BOUND + SLACK
    assert response.status_code == 502
    assert AuthorizationAttempt.objects.get().error_code == "timeout"


def test_a_slow_smartcar_within_the_bound_still_links(user_client, smartcar_sandbox) -> None:
    url = callback_url(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com")
    smartcar_sandbox.inject("*", latency=0.1)

    response = user_client.get(url)

    assert response.status_code == 302
    assert SmartcarAccount.objects.get().vehicles.count() == 3


def test_get_vehicle_gives_up_on_a_hanging_refresh_in_time(
    user, linked_account, smartcar_sandbox
) -> None:
    linked_account.access_expires_at = timezone.now() - timedelta(minutes=1)
    linked_account.save(update_fields=["access_expires_at"])
    smartcar_sandbox.inject("token", hang=HANG)

    with Stopwatch() as watch, pytest.raises(SmartcarUnavailable) as info:
        get_vehicle(user, linked_account.vehicles.get().smartcar_id)

    assert watch.elapsed < BOUND + SLACK
    assert info.value.code == "timeout"


@pytest.mark.parametrize("endpoint", ["token", "disconnect"])
def test_disconnect_gives_up_on_a_hanging_smartcar_in_time(
    endpoint, user_client, linked_account, smartcar_sandbox
) -> None:
    if endpoint == "token":
        linked_account.access_expires_at = timezone.now() - timedelta(minutes=1)
        linked_account.save(update_fields=["access_expires_at"])
    smartcar_sandbox.inject(endpoint, hang=HANG)

    with Stopwatch() as watch:
        response = user_client.post(f"/vehicles/accounts/{linked_account.pk}/disconnect/")

    assert watch.elapsed < BOUND + SLACK
    assert response.status_code == 302
    linked_account.refresh_from_db()
    assert linked_account.status == SmartcarAccount.Status.ACTIVE
    assert linked_account.vehicles.count() == 1


def test_call_vehicle_gives_up_on_a_hanging_vehicle_call_in_time(
    user, linked_account, smartcar_sandbox
) -> None:
    # A short hang, so that this test stays quick while the gap is open.
    smartcar_sandbox.inject("odometer", hang=BOUND + SLACK + 0.5)
    car_id = linked_account.vehicles.get().smartcar_id

    with Stopwatch() as watch, pytest.raises(SmartcarUnavailable):
        call_vehicle(user, car_id, lambda car: car.odometer())

    assert watch.elapsed < BOUND + SLACK
