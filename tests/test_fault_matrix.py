"""The fault matrix: every way Smartcar can fail, against every way in to Smartcar.

Rows are faults injected into the sandbox (or a Smartcar that refuses connections); columns
are what calls Smartcar: the callback (linking), `get_vehicle`/`call_vehicle` (host code),
the bulk refresh, and disconnect. Each cell checks the same promises: a clear page or a
documented exception, never a 500; the error is recorded on the attempt or the account; no
half-saved rows; nothing lost (the stored tokens are unchanged and still work at Smartcar).

A refresh that Smartcar answers only after our deadline is the last cell: the late answer is
saved, not lost. Cells that cannot happen are left out, by design: the bulk refresh only
calls the token endpoint, and host code reaches `/user` and `/vehicles` only through the SDK
itself, not through vehicle_auth (its vehicle calls are covered through the attributes call).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import smartcar
from django.test import Client
from django.utils import timezone
from smartcar.exception import SmartcarException

from tests.fault_helpers import closed_origin, point_smartcar_at, stored_tokens
from vehicle_auth import call_vehicle, get_vehicle
from vehicle_auth.exceptions import SmartcarError, SmartcarUnavailable
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle
from vehicle_auth.refresh import refresh_expiring_accounts
from vehicle_auth.sandbox import control

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/vehicles/login/"
CALLBACK = "/vehicles/callback/"
INDEX = "/vehicles/"
Outcome = AuthorizationAttempt.Outcome
Status = SmartcarAccount.Status
# Seconds a user's request may wait on Smartcar in these tests (hang cells wait that long).
BOUND = 1

# name: (fault, the error code recorded, the exception class get_vehicle raises)
TOKEN_FAULTS = {
    "500": ({"status": 500}, "server_error", SmartcarUnavailable),
    "503": ({"status": 503}, "server_error", SmartcarUnavailable),
    "hang": ({"hang": 30}, "timeout", SmartcarUnavailable),
    "non-json": (
        {"status": 200, "body": "<html>Welcome</html>", "content_type": "text/html"},
        "malformed_response",
        SmartcarError,
    ),
    "missing-fields": (
        {"status": 200, "body": {"token_type": "Bearer", "expires_in": 7200}},
        "malformed_response",
        SmartcarError,
    ),
    "429-retry-after": (
        {"status": 429, "retry_after": 30},
        "rate_limit_exceeded",
        SmartcarUnavailable,
    ),
}
# name: (fault, the error code the callback records)
API_FAULTS = {
    "401": ({"status": 401}, "AUTHENTICATION"),
    "403": ({"status": 403}, "PERMISSION"),
    "409": ({"status": 409}, "VEHICLE_STATE:ASLEEP"),
    "429": ({"status": 429, "retry_after": 30}, "RATE_LIMIT:VEHICLE"),
    "500": ({"status": 500}, "SERVER:INTERNAL"),
    "malformed": (
        {"status": 200, "body": "not json", "content_type": "text/plain"},
        "malformed_response",
    ),
}
API_ENDPOINTS = ("user", "vehicles", "attributes")


@pytest.fixture(autouse=True)
def bounded(settings) -> None:
    settings.VEHICLE_AUTH_REQUEST_TIMEOUT = BOUND


def expire(account: SmartcarAccount) -> SmartcarAccount:
    """Our copy of the access token is about to expire: the next use refreshes it."""
    account.access_expires_at = timezone.now() + timedelta(seconds=30)
    account.save(update_fields=["access_expires_at"])
    return account


def back_to_sandbox(settings, sandbox) -> None:
    """Undo point_smartcar_at (the SDK's own config too, which the app set when it called)."""
    settings.SMARTCAR_AUTH_ORIGIN = smartcar.config.AUTH_ORIGIN = sandbox.token_url
    settings.SMARTCAR_API_ORIGIN = smartcar.config.API_ORIGIN = sandbox.url


def assert_nothing_lost(account: SmartcarAccount, before: tuple, sandbox) -> None:
    """The stored tokens are those from before the fault, and Smartcar still takes them."""
    assert stored_tokens(account) == before
    sandbox.clear_faults()
    access, refresh = before[0], before[1]
    assert smartcar.get_user(access).id == account.smartcar_user_id
    assert sandbox.auth_client().exchange_refresh_token(refresh).access_token


# --- column: the callback -------------------------------------------------------------------


def start_link(client: Client, sandbox) -> str:
    """The callback URL Connect would send the user back to, with a code and the state."""
    location = client.get(LOGIN)["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = sandbox.issue_code(email="2-vehicles@smartcar.com")
    return f"{CALLBACK}?{urlencode({'code': code, 'state': state})}"


def assert_callback_failed_cleanly(response, code: str) -> None:
    assert response.status_code == 502
    page = response.content.decode()
    assert "We couldn&#x27;t reach Smartcar" in page or "We couldn't reach Smartcar" in page
    assert "Try again" in page
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.outcome == Outcome.FAILED
    assert attempt.error_code == code
    assert attempt.completed_at is not None
    assert attempt.account is None
    assert SmartcarAccount.objects.count() == 0
    assert Vehicle.objects.count() == 0


@pytest.mark.parametrize("name", TOKEN_FAULTS)
def test_callback_token_fault(name, user_client, smartcar_sandbox) -> None:
    fault, code, _ = TOKEN_FAULTS[name]
    callback = start_link(user_client, smartcar_sandbox)
    smartcar_sandbox.inject("token", **fault)

    response = user_client.get(callback)

    assert_callback_failed_cleanly(response, code)
    assert smartcar_sandbox.request_count("user") == 0


@pytest.mark.parametrize("name", API_FAULTS)
@pytest.mark.parametrize("endpoint", API_ENDPOINTS)
def test_callback_api_fault(endpoint, name, user_client, smartcar_sandbox) -> None:
    fault, code = API_FAULTS[name]
    callback = start_link(user_client, smartcar_sandbox)
    smartcar_sandbox.inject(endpoint, **fault)

    response = user_client.get(callback)

    assert_callback_failed_cleanly(response, code)
    assert smartcar_sandbox.request_count("token", detail="authorization_code") == 1


def test_callback_connection_refused(user_client, smartcar_sandbox, settings) -> None:
    callback = start_link(user_client, smartcar_sandbox)
    point_smartcar_at(settings, closed_origin())

    response = user_client.get(callback)

    assert_callback_failed_cleanly(response, "network_error")
    assert smartcar_sandbox.request_count("token") == 0


# --- column: get_vehicle / call_vehicle -----------------------------------------------------


@pytest.mark.parametrize("name", TOKEN_FAULTS)
def test_get_vehicle_token_fault(name, user, linked_account, smartcar_sandbox) -> None:
    fault, code, exception = TOKEN_FAULTS[name]
    before = stored_tokens(expire(linked_account))
    car_id = linked_account.vehicles.get().smartcar_id
    smartcar_sandbox.inject("token", **fault)

    with pytest.raises(exception) as info:
        get_vehicle(user, car_id)

    assert info.value.code == code
    assert isinstance(info.value, SmartcarUnavailable) == (exception is SmartcarUnavailable)
    linked_account.refresh_from_db()
    assert linked_account.last_error_code == code
    if name == "429-retry-after":
        assert linked_account.refresh_not_before > timezone.now() + timedelta(seconds=20)
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


@pytest.mark.parametrize("name", API_FAULTS)
def test_call_vehicle_attributes_fault(name, user, linked_account, smartcar_sandbox) -> None:
    fault, _ = API_FAULTS[name]
    before = stored_tokens(linked_account)
    car_id = linked_account.vehicles.get().smartcar_id
    calls_before = smartcar_sandbox.request_count("attributes")  # linking read them once
    smartcar_sandbox.inject("attributes", **fault)

    # call_vehicle hands host code the SDK's own exception for its own call.
    expected = requests.exceptions.JSONDecodeError if name == "malformed" else SmartcarException
    with pytest.raises(expected) as info:
        call_vehicle(user, car_id, lambda car: car.attributes())

    refreshes = smartcar_sandbox.request_count("token", detail="refresh_token")
    if name == "malformed":
        assert refreshes == 0
        assert_nothing_lost(linked_account, before, smartcar_sandbox)
        return
    assert info.value.status_code == int(name)
    if name == "401":
        # Smartcar refused a token we believed fresh: one refresh, one retry, then give up.
        # The rotated pair was saved, and it works.
        assert refreshes == 1
        assert smartcar_sandbox.request_count("attributes") - calls_before == 2
        after = stored_tokens(linked_account)
        assert after[:2] != before[:2]
        assert after[4] == Status.ACTIVE
        assert_nothing_lost(linked_account, after, smartcar_sandbox)
    else:
        assert refreshes == 0
        assert_nothing_lost(linked_account, before, smartcar_sandbox)


def test_get_vehicle_connection_refused(user, linked_account, smartcar_sandbox, settings) -> None:
    before = stored_tokens(expire(linked_account))
    car_id = linked_account.vehicles.get().smartcar_id
    point_smartcar_at(settings, closed_origin())

    with pytest.raises(SmartcarUnavailable) as info:
        get_vehicle(user, car_id)

    assert info.value.code == "network_error"
    linked_account.refresh_from_db()
    assert linked_account.last_error_code == "network_error"
    back_to_sandbox(settings, smartcar_sandbox)
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


# --- column: the bulk refresh ---------------------------------------------------------------


@pytest.mark.parametrize("name", TOKEN_FAULTS)
def test_bulk_refresh_token_fault(name, user, linked_account, smartcar_sandbox) -> None:
    fault, code, _ = TOKEN_FAULTS[name]
    before = stored_tokens(expire(linked_account))
    smartcar_sandbox.inject("token", **fault)

    summary = refresh_expiring_accounts()

    assert (summary.selected, summary.failed, summary.refreshed) == (1, 1, 0)
    linked_account.refresh_from_db()
    assert linked_account.last_error_code == code
    if name == "429-retry-after":
        # Smartcar asked us to wait: the next run leaves the account alone.
        assert refresh_expiring_accounts().selected == 0
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


def test_bulk_refresh_connection_refused(linked_account, smartcar_sandbox, settings) -> None:
    before = stored_tokens(expire(linked_account))
    point_smartcar_at(settings, closed_origin())

    summary = refresh_expiring_accounts()

    assert (summary.failed, summary.refreshed) == (1, 0)
    linked_account.refresh_from_db()
    assert linked_account.last_error_code == "network_error"
    back_to_sandbox(settings, smartcar_sandbox)
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


# --- column: disconnect ---------------------------------------------------------------------

NOTHING_REMOVED = (
    "Smartcar could not be told to disconnect your vehicle, so nothing was removed. "
    "Please try again in a moment."
)


def disconnect(client: Client, account: SmartcarAccount):
    response = client.post(f"/vehicles/accounts/{account.pk}/disconnect/", follow=True)
    assert response.redirect_chain == [(INDEX, 302)]
    assert response.status_code == 200
    return response.content.decode()


def assert_disconnect_refused(page: str, account: SmartcarAccount) -> None:
    assert NOTHING_REMOVED in page
    account.refresh_from_db()
    assert account.status == Status.ACTIVE
    assert account.vehicles.count() == 1


@pytest.mark.parametrize("name", TOKEN_FAULTS)
def test_disconnect_token_fault(name, user_client, linked_account, smartcar_sandbox) -> None:
    fault, code, _ = TOKEN_FAULTS[name]
    before = stored_tokens(expire(linked_account))
    smartcar_sandbox.inject("token", **fault)

    page = disconnect(user_client, linked_account)

    assert_disconnect_refused(page, linked_account)
    assert linked_account.last_error_code == code
    assert smartcar_sandbox.request_count("disconnect") == 0
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


@pytest.mark.parametrize("name", API_FAULTS)
def test_disconnect_revoke_fault(name, user_client, linked_account, smartcar_sandbox) -> None:
    fault, _ = API_FAULTS[name]
    before = stored_tokens(linked_account)
    smartcar_sandbox.inject("disconnect", **fault)

    page = disconnect(user_client, linked_account)

    if name == "401":
        # Documented: a 401 on a token just checked fresh means Smartcar no longer serves
        # us that car (the owner removed it at Smartcar), so it counts as revoked.
        assert "Your vehicle was disconnected." in page
        linked_account.refresh_from_db()
        assert linked_account.status == Status.DISCONNECTED
        assert (linked_account.access_token, linked_account.refresh_token) == ("", "")
        return
    assert_disconnect_refused(page, linked_account)
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


def test_disconnect_connection_refused(
    user_client, linked_account, smartcar_sandbox, settings
) -> None:
    before = stored_tokens(linked_account)
    point_smartcar_at(settings, closed_origin())

    page = disconnect(user_client, linked_account)

    assert_disconnect_refused(page, linked_account)
    back_to_sandbox(settings, smartcar_sandbox)
    assert_nothing_lost(linked_account, before, smartcar_sandbox)


def test_a_failed_revocation_is_recorded_on_the_account(
    user_client, linked_account, smartcar_sandbox
) -> None:
    smartcar_sandbox.inject("disconnect", status=500)

    disconnect(user_client, linked_account)

    linked_account.refresh_from_db()
    assert linked_account.last_error_code == "SERVER:INTERNAL"


def test_a_refresh_answered_after_the_bound_loses_nothing(
    user, linked_account, smartcar_sandbox
) -> None:
    smartcar_sandbox.configure(ROTATION_GRACE=0)  # Smartcar's ~60 s grace, run out
    car_id = expire(linked_account).vehicles.get().smartcar_id
    smartcar_sandbox.inject("token", latency=BOUND + 0.5, times=1)
    with pytest.raises(SmartcarUnavailable):
        get_vehicle(user, car_id)
    assert control.wait_until_idle(timeout=5)  # Smartcar did answer, late

    assert get_vehicle(user, car_id).attributes().make == "CHEVROLET"
