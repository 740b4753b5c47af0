"""The linking flow end to end: our views, the real SDK, and the sandbox over HTTP."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory
from vehicle_auth import signals
from vehicle_auth.flow import digest
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/vehicles/login/"
CALLBACK = "/vehicles/callback/"
INDEX = "/vehicles/"


def start(client: Client, query: str = "") -> str:
    response = client.get(LOGIN + query)
    assert response.status_code == 302
    return response["Location"]


def back_to_site(client: Client, location: str):
    """Follow Connect's redirect back to our callback, through the test client."""
    parts = urlsplit(location)
    assert parts.path == CALLBACK
    return client.get(f"{parts.path}?{parts.query}")


def link(client: Client, sandbox, query: str = "", **connect):
    return back_to_site(client, sandbox.connect(start(client, query), **connect))


def callback_query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


# --- /vehicles/login/ -----------------------------------------------------------------------


def test_login_requires_a_signed_in_user(client: Client) -> None:
    response = client.get(LOGIN)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/vehicles/login/")


def test_login_records_an_attempt_and_redirects_to_connect(user, user_client, smartcar_sandbox):
    url = start(user_client)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert url.startswith(smartcar_sandbox.url)
    assert parts.path.endswith("/oauth/authorize")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [smartcar_sandbox.client_id]
    assert query["redirect_uri"] == [smartcar_sandbox.redirect_uri]
    assert query["mode"] == ["test"]
    assert query["approval_prompt"] == ["auto"]
    assert query["scope"][0].split(" ") == ["read_vehicle_info", "read_vin", "read_odometer"]
    state = query["state"][0]
    assert len(state) >= 43  # 256 bits, url-safe base64
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.user == user
    assert attempt.state_hash == digest(state)
    assert state not in attempt.state_hash
    assert attempt.outcome == AuthorizationAttempt.Outcome.PENDING
    lifetime = attempt.expires_at - attempt.created_at
    assert timedelta(minutes=10) - timedelta(seconds=1) < lifetime <= timedelta(minutes=10)


def test_login_passes_make_single_select_and_force_prompt(user_client, smartcar_sandbox):
    query = callback_query(start(user_client, "?make=tesla&single_select=1&force_prompt=true"))
    assert query["make"] == ["TESLA"]
    assert query["single_select"] == ["true"]
    assert query["approval_prompt"] == ["force"]


def test_login_ignores_a_malformed_make(user_client, smartcar_sandbox):
    query = callback_query(start(user_client, "?make=%3Cscript%3E"))
    assert "make" not in query


def test_each_login_gets_its_own_state(user_client, smartcar_sandbox):
    first = callback_query(start(user_client))["state"]
    second = callback_query(start(user_client))["state"]
    assert first != second
    assert AuthorizationAttempt.objects.count() == 2


def test_login_costs_at_most_three_queries(
    user_client, smartcar_sandbox, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        start(user_client)


# --- success --------------------------------------------------------------------------------


def test_linking_saves_account_vehicles_and_attempt(user, user_client, smartcar_sandbox):
    linked = []
    signals.account_linked.connect(lambda **kw: linked.append(kw), weak=False)
    try:
        response = link(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com")
    finally:
        signals.account_linked.receivers.clear()
    assert response.status_code == 302
    assert response["Location"] == INDEX
    account = SmartcarAccount.objects.get()
    assert account.user == user
    assert account.status == SmartcarAccount.Status.ACTIVE
    assert account.scopes == ["read_odometer", "read_vehicle_info", "read_vin"]
    assert account.access_expires_at > timezone.now() + timedelta(minutes=110)
    assert account.refresh_expires_at > timezone.now() + timedelta(days=59)
    cars = list(account.vehicles.all())
    assert len(cars) == 3
    assert all(car.make and car.model and car.year and len(car.vin) == 17 for car in cars)
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.outcome == AuthorizationAttempt.Outcome.SUCCEEDED
    assert attempt.account == account
    assert [kw["account"] for kw in linked] == [account]
    page = user_client.get(INDEX)
    assert "connected with 3 vehicles" in page.content.decode()


def test_the_tokens_work_and_are_stored_encrypted(user_client, smartcar_sandbox):
    import smartcar

    link(user_client, smartcar_sandbox)
    account = SmartcarAccount.objects.get()
    assert smartcar.get_user(account.access_token).id == account.smartcar_user_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM vehicle_auth_smartcaraccount")
        raw_access, raw_refresh = cursor.fetchone()
    assert account.access_token not in raw_access
    assert account.refresh_token not in raw_refresh
    assert account.access_token not in repr(account) + str(account)


def test_next_is_followed_when_it_stays_on_the_site(user_client, smartcar_sandbox):
    response = link(user_client, smartcar_sandbox, "?next=/accounts/somewhere/")
    assert response["Location"] == "/accounts/somewhere/"


@pytest.mark.parametrize(
    "unsafe", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "/\\evil"]
)
def test_next_never_leads_off_site(user_client, smartcar_sandbox, unsafe):
    response = link(user_client, smartcar_sandbox, "?" + urlencode({"next": unsafe}))
    assert response["Location"] == INDEX


def test_relinking_updates_the_account_and_its_vehicles(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com")
    account = SmartcarAccount.objects.get()
    first_token = account.access_token
    updates = []
    signals.account_updated.connect(lambda **kw: updates.append(kw), weak=False)
    try:
        # force_prompt: with "auto" Connect would reuse the earlier grant without asking.
        response = link(
            user_client,
            smartcar_sandbox,
            "?force_prompt=1",
            email="3-vehicles@smartcar.com",
            vehicles=[0],
        )
    finally:
        signals.account_updated.receivers.clear()
    assert response.status_code == 302
    account.refresh_from_db()
    assert SmartcarAccount.objects.count() == 1
    assert account.access_token != first_token
    assert account.vehicles.count() == 1
    assert len(updates) == 1
    assert len(updates[0]["removed_vehicle_ids"]) == 2
    assert updates[0]["added_vehicle_ids"] == []


def test_relinking_with_auto_prompt_keeps_the_earlier_grant(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com")
    response = link(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com", vehicles=[0])
    assert response.status_code == 302
    assert SmartcarAccount.objects.get().vehicles.count() == 3


def test_the_same_smartcar_account_links_separately_for_two_site_users(smartcar_sandbox):
    for name in ("ann", "bob"):
        client = Client()
        client.force_login(UserFactory(username=name))
        link(client, smartcar_sandbox, email="shared@example.com")
    accounts = SmartcarAccount.objects.all()
    assert accounts.count() == 2
    assert len({a.smartcar_user_id for a in accounts}) == 1


def test_sixty_vehicles_are_read_across_pages(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox, email="60-vehicles@smartcar.com")
    assert Vehicle.objects.count() == 60
    assert smartcar_sandbox.request_count("vehicles") == 2


def test_an_account_with_no_vehicles_granted_links_empty(user_client, smartcar_sandbox):
    smartcar_sandbox.inject(
        "vehicles", status=200, body={"vehicles": [], "paging": {"count": 0, "offset": 0}}
    )
    response = link(user_client, smartcar_sandbox)
    assert response.status_code == 302
    assert SmartcarAccount.objects.get().vehicles.count() == 0


def test_vin_is_skipped_when_the_owner_unticks_it(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox, uncheck_scopes=["read_vin"])
    assert Vehicle.objects.get().vin == ""


@pytest.mark.parametrize("cars", [1, 20])
def test_callback_costs_at_most_fifteen_queries(
    user_client, smartcar_sandbox, django_assert_max_num_queries, cars
):
    location = smartcar_sandbox.connect(start(user_client), email=f"{cars}-vehicles@smartcar.com")
    with django_assert_max_num_queries(15):
        response = back_to_site(user_client, location)
    assert response.status_code == 302
    assert Vehicle.objects.count() == cars


def test_vehicles_page_query_count_does_not_grow(
    user, user_client, django_assert_max_num_queries, account_factory, vehicle_factory
):
    for _ in range(4):
        account = account_factory(user=user)
        vehicle_factory.create_batch(5, account=account)
    with django_assert_max_num_queries(5):
        response = user_client.get(INDEX)
    assert response.content.decode().count("<article") == 4


def test_vehicles_page_shows_only_the_users_own_accounts(
    user_client, other_user, account_factory, vehicle_factory
):
    vehicle_factory(account=account_factory(user=other_user), model="Secret Roadster")
    response = user_client.get(INDEX)
    assert "Secret Roadster" not in response.content.decode()
    assert "You haven't connected a vehicle yet." in response.content.decode()


# --- refused callbacks: no call to Smartcar ----------------------------------------------------


def assert_refused(response, smartcar_sandbox) -> None:
    assert response.status_code == 400
    assert "This link can't be used" in response.content.decode()
    assert smartcar_sandbox.request_count("token") == 0


def test_a_missing_state_is_refused(user_client, smartcar_sandbox):
    assert_refused(user_client.get(CALLBACK + "?code=abc"), smartcar_sandbox)


def test_a_forged_state_is_refused(user_client, smartcar_sandbox):
    start(user_client)
    assert_refused(user_client.get(CALLBACK + "?code=abc&state=forged"), smartcar_sandbox)
    assert AuthorizationAttempt.objects.get().outcome == AuthorizationAttempt.Outcome.PENDING


def test_an_expired_state_is_refused(user_client, smartcar_sandbox):
    location = smartcar_sandbox.connect(start(user_client))
    AuthorizationAttempt.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_refused(back_to_site(user_client, location), smartcar_sandbox)
    assert AuthorizationAttempt.objects.get().outcome == AuthorizationAttempt.Outcome.EXPIRED


def test_a_replayed_callback_exchanges_only_once(user_client, smartcar_sandbox):
    location = smartcar_sandbox.connect(start(user_client))
    assert back_to_site(user_client, location).status_code == 302
    replay = back_to_site(user_client, location)
    assert replay.status_code == 400
    assert smartcar_sandbox.request_count("token") == 1
    assert SmartcarAccount.objects.count() == 1


def test_another_users_state_is_refused(user_client, other_client, smartcar_sandbox):
    location = smartcar_sandbox.connect(start(user_client))
    assert_refused(back_to_site(other_client, location), smartcar_sandbox)
    # The rightful owner can still finish.
    assert back_to_site(user_client, location).status_code == 302


def test_another_sessions_state_is_refused(user, user_client, smartcar_sandbox):
    location = smartcar_sandbox.connect(start(user_client))
    same_user_elsewhere = Client()
    same_user_elsewhere.force_login(user)
    assert_refused(back_to_site(same_user_elsewhere, location), smartcar_sandbox)


def test_a_signed_out_visitor_is_refused(client, user_client, smartcar_sandbox):
    location = smartcar_sandbox.connect(start(user_client))
    response = back_to_site(client, location)
    assert_refused(response, smartcar_sandbox)
    assert "signed out" in response.content.decode()


def test_a_very_long_unicode_state_is_refused(user_client, smartcar_sandbox):
    state = "é€😀" * 20000
    response = user_client.get(CALLBACK + "?" + urlencode({"state": state, "code": "x"}))
    assert_refused(response, smartcar_sandbox)


# --- errors from Connect ----------------------------------------------------------------------


def finish_with(client: Client, **params: str):
    state = callback_query(start(client))["state"][0]
    return client.get(CALLBACK + "?" + urlencode({**params, "state": state}))


@pytest.mark.parametrize(
    ("error", "outcome", "says"),
    [
        ("access_denied", "denied", "You chose not to share your vehicle"),
        ("user_manually_returned_to_application", "denied", "You left Smartcar"),
        ("invalid_subscription", "failed", "subscription"),
        ("no_vehicles", "failed", "We found no vehicles"),
        ("server_error", "failed", "Smartcar ran into an unexpected error"),
        ("vehicle_incompatible", "failed", "can&#x27;t be connected through Smartcar yet"),
        ("configuration_error", "failed", "misconfigured"),
        ("brand_new_error", "failed", "brand_new_error"),
    ],
)
def test_each_connect_error_ends_the_attempt_and_explains(
    user_client, smartcar_sandbox, error, outcome, says
):
    response = finish_with(user_client, error=error, error_description="Something happened.")
    assert response.status_code == 200
    assert says in response.content.decode()
    assert "Try again" in response.content.decode()
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.outcome == outcome
    assert attempt.error_code == error
    assert attempt.error_description == "Something happened."
    assert SmartcarAccount.objects.count() == 0
    assert smartcar_sandbox.request_count("token") == 0


def test_vehicle_incompatible_names_the_car(user_client, smartcar_sandbox):
    response = finish_with(
        user_client, error="vehicle_incompatible", make="TESLA", model="Model S", year="2014"
    )
    assert "Your 2014 TESLA Model S can" in response.content.decode()


def test_configuration_error_shows_connects_message(user_client, smartcar_sandbox):
    response = finish_with(
        user_client, error="configuration_error", status_code="400", error_message="Bad scope <x>"
    )
    assert "Bad scope &lt;x&gt;" in response.content.decode()


def test_deny_on_the_grant_screen(user_client, smartcar_sandbox):
    response = link(user_client, smartcar_sandbox, approve=False)
    assert "You chose not to share your vehicle" in response.content.decode()
    assert AuthorizationAttempt.objects.get().outcome == "denied"


def test_incompatible_special_email_names_the_car(user_client, smartcar_sandbox):
    response = link(user_client, smartcar_sandbox, email="smartcar@vehicle-incompatible.com")
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.error_code == "vehicle_incompatible"
    assert "Your 20" in response.content.decode()  # "Your <year> <make> <model> can't ..."


def test_unicode_and_nul_in_error_description_are_stored_safely(user_client, smartcar_sandbox):
    response = finish_with(
        user_client, error="server_error", error_description="Ünïcødé\x00 😀" * 500
    )
    assert response.status_code == 200
    attempt = AuthorizationAttempt.objects.get()
    assert "\x00" not in attempt.error_description
    assert attempt.error_description.startswith("Ünïcødé 😀")
    assert len(attempt.error_description) == 1000


def test_neither_code_nor_error_fails_the_attempt(user_client, smartcar_sandbox):
    response = finish_with(user_client)
    assert response.status_code == 200
    assert AuthorizationAttempt.objects.get().error_code == "invalid_request"


# --- Smartcar failures: nothing half-saved ------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("token", {"status": 500}),
        ("token", {"status": 503, "body": "<html>down</html>", "content_type": "text/html"}),
        ("token", {"status": 200, "body": {"token_type": "Bearer"}}),
        ("user", {"status": 500}),
        ("vehicles", {"status": 200, "body": "not json", "content_type": "text/plain"}),
        ("vehicles", {"status": 429, "retry_after": 30}),
        ("attributes", {"status": 409}),
        ("attributes", {"status": 200, "body": {"id": "x"}}),
    ],
)
def test_a_smartcar_failure_fails_the_attempt_and_saves_nothing(
    user_client, smartcar_sandbox, endpoint, fault
):
    smartcar_sandbox.inject(endpoint, **fault)
    response = link(user_client, smartcar_sandbox, email="3-vehicles@smartcar.com")
    assert response.status_code == 502
    assert "Try again" in response.content.decode()
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.outcome == AuthorizationAttempt.Outcome.FAILED
    assert attempt.error_code
    assert SmartcarAccount.objects.count() == 0
    assert Vehicle.objects.count() == 0


def test_a_hanging_smartcar_is_given_up_on_in_time(user_client, smartcar_sandbox, settings):
    settings.VEHICLE_AUTH_REQUEST_TIMEOUT = 0.5
    smartcar_sandbox.inject("user", hang=30)
    response = link(user_client, smartcar_sandbox)
    smartcar_sandbox.clear_faults()
    assert response.status_code == 502
    assert AuthorizationAttempt.objects.get().error_code == "timeout"
    assert SmartcarAccount.objects.count() == 0


# --- disconnect ---------------------------------------------------------------------------------


def test_disconnect_revokes_each_vehicle_and_destroys_tokens(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox, email="2-vehicles@smartcar.com")
    account = SmartcarAccount.objects.get()
    unlinked = []
    signals.account_unlinked.connect(lambda **kw: unlinked.append(kw), weak=False)
    try:
        response = user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/")
    finally:
        signals.account_unlinked.receivers.clear()
    assert response.status_code == 302
    assert smartcar_sandbox.request_count("disconnect") == 2
    account.refresh_from_db()
    assert account.status == SmartcarAccount.Status.DISCONNECTED
    assert account.access_token == ""
    assert account.refresh_token == ""
    assert account.vehicles.count() == 0
    assert unlinked[0]["revoked"] is True
    page = user_client.get(INDEX).content.decode()
    assert "Your vehicle was disconnected." in page
    assert "<article" not in page


def test_disconnect_when_smartcar_fails_loses_nothing(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox)
    account = SmartcarAccount.objects.get()
    smartcar_sandbox.inject("disconnect", status=500)
    response = user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/", follow=True)
    assert "nothing was removed" in response.content.decode()
    refreshed = SmartcarAccount.objects.get()
    assert refreshed.status == SmartcarAccount.Status.ACTIVE
    assert refreshed.access_token == account.access_token
    assert refreshed.vehicles.count() == 1


def test_disconnect_needs_post(user_client, linked_account_id):
    assert user_client.get(f"/vehicles/accounts/{linked_account_id}/disconnect/").status_code == 405


def test_disconnect_needs_csrf(user, linked_account_id):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(f"/vehicles/accounts/{linked_account_id}/disconnect/")
    assert response.status_code == 403


def test_another_users_account_cannot_be_disconnected(other_client, linked_account_id):
    response = other_client.post(f"/vehicles/accounts/{linked_account_id}/disconnect/")
    assert response.status_code == 404
    assert SmartcarAccount.objects.get().status == SmartcarAccount.Status.ACTIVE


@pytest.fixture
def linked_account_id(user, account_factory) -> int:
    return account_factory(user=user).pk


def test_an_unknown_code_fails_without_storing_the_code(user_client, smartcar_sandbox):
    response = finish_with(user_client, code="made-up-code-123")
    assert response.status_code == 502
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.error_code == "invalid_request"
    assert "[code]" in attempt.error_description
    assert "made-up-code-123" not in attempt.error_description
    assert smartcar_sandbox.request_count("token") == 1


def test_disconnect_after_the_owner_revoked_us_at_smartcar(user_client, smartcar_sandbox):
    link(user_client, smartcar_sandbox)
    account = SmartcarAccount.objects.get()
    smartcar_sandbox.revoke_tokens()  # Smartcar answers 401 for every call now
    response = user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/", follow=True)
    assert "Your vehicle was disconnected." in response.content.decode()
    account.refresh_from_db()
    assert account.status == SmartcarAccount.Status.DISCONNECTED
    assert account.access_token == ""
