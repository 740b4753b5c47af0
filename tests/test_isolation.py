"""No user can see, refresh or disconnect another user's account or car, by any way in."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from vehicle_auth import call_vehicle, get_vehicle
from vehicle_auth.exceptions import NotLinked
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = "/vehicles/"
LOGIN = "/vehicles/login/"
CALLBACK = "/vehicles/callback/"
Status = SmartcarAccount.Status


def disconnect_url(account: SmartcarAccount) -> str:
    return f"/vehicles/accounts/{account.pk}/disconnect/"


def state_of(client: Client) -> str:
    location = client.get(LOGIN)["Location"]
    return parse_qs(urlsplit(location).query)["state"][0]


@pytest.fixture
def two_owners(user, other_user, account_factory, vehicle_factory):
    """alice's Tesla and mallory's Porsche, with made-up tokens (no Smartcar call needed)."""
    mine = vehicle_factory(account=account_factory(user=user), vin="5YJSA1E2MINE00001")
    theirs = vehicle_factory(
        account=account_factory(user=other_user, smartcar_user_id="mallory-at-smartcar"),
        make="PORSCHE",
        model="Taycan",
        vin="WP0THEIRS00000002",
    )
    return mine, theirs


def test_the_vehicles_page_shows_only_ones_own(user_client, two_owners) -> None:
    mine, theirs = two_owners

    page = user_client.get(INDEX).content.decode()

    assert mine.vin in page
    assert disconnect_url(mine.account) in page
    for secret in (theirs.vin, theirs.model, theirs.smartcar_id, "mallory-at-smartcar"):
        assert secret not in page
    assert disconnect_url(theirs.account) not in page


def test_another_users_account_cannot_be_disconnected(
    user_client, two_owners, smartcar_sandbox
) -> None:
    _, theirs = two_owners
    account = theirs.account
    before = (account.status, account.access_token, account.refresh_token)

    response = user_client.post(disconnect_url(account))
    missing = user_client.post("/vehicles/accounts/999999/disconnect/")

    assert response.status_code == missing.status_code == 404  # no hint that it exists
    account.refresh_from_db()
    assert (account.status, account.access_token, account.refresh_token) == before
    assert account.vehicles.count() == 1
    assert smartcar_sandbox.request_count() == 0


def test_every_page_of_the_app_needs_a_signed_in_user(client, two_owners) -> None:
    _, theirs = two_owners
    for response in (
        client.get(INDEX),
        client.get(LOGIN),
        client.post(disconnect_url(theirs.account)),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert client.get(CALLBACK + "?state=x&code=y").status_code == 400
    assert SmartcarAccount.objects.get(pk=theirs.account.pk).status == Status.ACTIVE


def test_host_code_cannot_reach_another_users_car(user, two_owners, smartcar_sandbox) -> None:
    mine, theirs = two_owners

    with pytest.raises(NotLinked):
        get_vehicle(user, theirs.smartcar_id)
    with pytest.raises(NotLinked):
        call_vehicle(user, theirs.smartcar_id, lambda car: car.attributes())

    assert get_vehicle(user, mine.smartcar_id).access_token == mine.account.access_token
    assert smartcar_sandbox.request_count() == 0


def test_a_car_shared_by_two_users_is_reached_with_ones_own_token(
    user, other_user, link_account, smartcar_sandbox
) -> None:
    mine = link_account(user, email="family@example.com")
    theirs = link_account(other_user, email="family@example.com")
    car_id = mine.vehicles.get().smartcar_id
    assert theirs.vehicles.get().smartcar_id == car_id

    assert get_vehicle(user, car_id).access_token == mine.access_token
    assert get_vehicle(other_user, car_id).access_token == theirs.access_token
    assert mine.access_token != theirs.access_token


def test_another_users_state_is_refused_and_stays_theirs(
    other_user, user_client, other_client, smartcar_sandbox
) -> None:
    state = state_of(other_client)
    query = urlencode({"code": smartcar_sandbox.issue_code(), "state": state})

    stolen = user_client.get(f"{CALLBACK}?{query}")

    assert stolen.status_code == 400
    assert "another browser session or account" in stolen.content.decode()
    assert smartcar_sandbox.request_count("token") == 0
    attempt = AuthorizationAttempt.objects.get()
    assert attempt.outcome == AuthorizationAttempt.Outcome.PENDING
    assert attempt.consumed_at is None
    # The owner of the state can still finish with it.
    assert other_client.get(f"{CALLBACK}?{query}").status_code == 302
    assert SmartcarAccount.objects.get().user == other_user


def test_ones_own_state_from_another_session_is_refused(
    user, user_client, smartcar_sandbox
) -> None:
    state = state_of(user_client)
    elsewhere = Client()
    elsewhere.force_login(user)
    query = urlencode({"code": smartcar_sandbox.issue_code(), "state": state})

    assert elsewhere.get(f"{CALLBACK}?{query}").status_code == 400
    assert AuthorizationAttempt.objects.get().consumed_at is None
    assert smartcar_sandbox.request_count("token") == 0


def test_the_admin_is_for_staff_only(user_client, two_owners) -> None:
    _, theirs = two_owners
    pages = [
        reverse("admin:vehicle_auth_smartcaraccount_changelist"),
        reverse("admin:vehicle_auth_smartcaraccount_change", args=[theirs.account.pk]),
        reverse("admin:vehicle_auth_vehicle_changelist"),
        reverse("admin:vehicle_auth_authorizationattempt_changelist"),
    ]
    for page in pages:
        response = user_client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/admin/login/")
        assert theirs.vin not in user_client.get(page, follow=True).content.decode()


def test_staff_need_the_permission_for_each_thing(two_owners, smartcar_sandbox) -> None:
    _, theirs = two_owners
    staff = UserFactory(username="helpdesk", is_staff=True)
    client = Client()
    client.force_login(staff)
    changelist = reverse("admin:vehicle_auth_smartcaraccount_changelist")

    assert client.get(changelist).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_smartcaraccount"))
    assert client.get(changelist).status_code == 200
    response = client.post(
        changelist,
        {"action": "refresh_tokens_now", "_selected_action": [theirs.account.pk]},
    )

    assert response.status_code in (200, 302)
    assert smartcar_sandbox.request_count() == 0  # no refresh without the permission
    theirs.account.refresh_from_db()
    assert theirs.account.last_refreshed_at is None
