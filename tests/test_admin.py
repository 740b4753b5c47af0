"""The admin: pages for every state, search, filters, permissions, actions through the sandbox,
query counts, and no token (nor a piece of one) on any page."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    AuthorizationAttemptFactory,
    SmartcarAccountFactory,
    UserFactory,
    VehicleFactory,
    create_bulk_accounts,
    link_sandbox_account,
)
from vehicle_auth import admin_actions
from vehicle_auth.admin import admin_link
from vehicle_auth.crypto import fingerprint
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle

Status = SmartcarAccount.Status
Outcome = AuthorizationAttempt.Outcome

ACCOUNTS = reverse("admin:vehicle_auth_smartcaraccount_changelist")
VEHICLES = reverse("admin:vehicle_auth_vehicle_changelist")
ATTEMPTS = reverse("admin:vehicle_auth_authorizationattempt_changelist")
CHANGELISTS = (ACCOUNTS, VEHICLES, ATTEMPTS)
ACTIONS = ("refresh_tokens_now", "verify_connection", "disconnect_accounts")


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def listed(response: Any) -> set[int]:
    """The primary keys a changelist response shows."""
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action_names(response: Any) -> set[str]:
    assert response.status_code == 200
    return set(re.findall(r'<option value="([a-z_]+)"', response.content.decode()))


def staff_client(*codenames: str) -> Client:
    """A client signed in as a staff user (not superuser) holding only these permissions."""
    staff = UserFactory(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="vehicle_auth", codename__in=codenames)
    )
    assert staff.user_permissions.count() == len(codenames)
    client = Client()
    client.force_login(staff)
    return client


def row_html(html: str, pk: int) -> str:
    """The changelist row of object `pk`."""
    [row] = [row for row in html.split("<tr") if f'name="_selected_action" value="{pk}"' in row]
    return row


def run_action(client: Client, action: str, accounts: list[SmartcarAccount], **extra: str) -> Any:
    return client.post(
        ACCOUNTS,
        {"action": action, "_selected_action": [a.pk for a in accounts], **extra},
        follow=True,
    )


@pytest.fixture
def accounts_by_status(db: None) -> dict[str, SmartcarAccount]:
    """One account per status, each with two vehicles and some history."""
    made = {}
    for status in Status.values:
        account = SmartcarAccountFactory(
            user=UserFactory(username=f"owner-{status}"), status=status
        )
        VehicleFactory.create_batch(2, account=account)
        AuthorizationAttemptFactory(
            user=account.user,
            account=account,
            outcome=Outcome.SUCCEEDED,
            completed_at=timezone.now(),
        )
        made[status] = account
    return made


# --- The accounts changelist ----------------------------------------------------------------


def test_changelist_shows_every_status_as_text(admin_client, accounts_by_status):
    response = admin_client.get(ACCOUNTS)
    assert listed(response) == {a.pk for a in accounts_by_status.values()}
    html = response.content.decode()
    for label in ("Active", "Reconnection required", "Disconnected"):
        # The word is inside the badge, not only its colour.
        assert re.search(rf"vehicle-auth-badge[^>]*>.*?</span> {label}</span>", html)
    for header in (
        "Site user",
        "Smartcar user id",
        "Status",
        "Vehicles",
        "Access token expires",
        "Refresh token expires",
        "Last refresh",
        "Last error",
        "Linked at",
    ):
        assert f">{header}</a>" in html or f">{header}</span>" in html, header


def test_changelist_counts_vehicles(admin_client, account_factory, vehicle_factory):
    three = account_factory()
    vehicle_factory.create_batch(3, account=three)
    none = account_factory()
    response = admin_client.get(ACCOUNTS + "?o=4")  # sorted by vehicle count
    counts = {a.pk: a.vehicle_total for a in response.context["cl"].result_list}
    assert counts == {three.pk: 3, none.pk: 0}
    assert [a.pk for a in response.context["cl"].result_list] == [none.pk, three.pk]


def test_refresh_expiry_warns_within_seven_days(admin_client, account_factory):
    now = timezone.now()
    soon = account_factory(refresh_expires_at=now + timedelta(days=3, hours=1))
    today = account_factory(refresh_expires_at=now + timedelta(hours=5))
    expired = account_factory(refresh_expires_at=now - timedelta(days=1))
    fine = account_factory(refresh_expires_at=now + timedelta(days=30))
    dead = account_factory(
        refresh_expires_at=now + timedelta(days=2), status=Status.REAUTH_REQUIRED
    )
    html = admin_client.get(ACCOUNTS).content.decode()
    rows = {a.pk: row_html(html, a.pk) for a in (soon, today, expired, fine, dead)}
    assert "Expires in 3 days" in rows[soon.pk]
    assert "Expires today" in rows[today.pk]
    assert "Expired" in rows[expired.pk]
    assert "Expire" not in rows[fine.pk].replace("expires", "")
    # A refresh token Smartcar already refused needs a relink, not a warning about expiry.
    assert "Expire" not in rows[dead.pk].replace("expires", "")


def test_changelist_shows_last_error(admin_client, account_factory):
    account = account_factory(
        last_error_code="invalid_grant", last_error="Invalid or expired refresh token."
    )
    html = admin_client.get(ACCOUNTS).content.decode()
    assert "<strong>invalid_grant</strong> Invalid or expired refresh token." in html
    assert str(account.smartcar_user_id) in html


# --- Search ---------------------------------------------------------------------------------


@pytest.fixture
def two_owners(db: None) -> tuple[SmartcarAccount, SmartcarAccount]:
    wanted = SmartcarAccountFactory(user=UserFactory(username="wanda", email="wanda@fleet.example"))
    VehicleFactory(
        account=wanted, make="RIVIAN", model="R1T", vin="7PDSGABA8NN000123", smartcar_id="v-r1t-1"
    )
    VehicleFactory(account=wanted, make="KIA", model="EV6", smartcar_id="v-ev6-1")
    other = SmartcarAccountFactory(user=UserFactory(username="otto", email="otto@home.example"))
    VehicleFactory(account=other, make="TESLA", model="Model 3", vin="5YJ3E1EA7KF000999")
    return wanted, other


@pytest.mark.parametrize(
    "term",
    ["wanda", "fleet.example", "RIVIAN", "r1t", "EV6", "NN000123", "v-ev6-1", "rivian r1t"],
)
def test_search_finds_the_account(admin_client, two_owners, term):
    wanted, _other = two_owners
    assert listed(admin_client.get(ACCOUNTS, {"q": term})) == {wanted.pk}


def test_search_by_smartcar_user_id(admin_client, two_owners):
    wanted, other = two_owners
    assert listed(admin_client.get(ACCOUNTS, {"q": other.smartcar_user_id})) == {other.pk}
    # An account with many matching cars is listed once, with its real vehicle count.
    response = admin_client.get(ACCOUNTS, {"q": "v-"})
    assert listed(response) == {wanted.pk}
    assert [a.vehicle_total for a in response.context["cl"].result_list] == [2]


def test_search_finds_nothing_for_a_stranger(admin_client, two_owners):
    assert listed(admin_client.get(ACCOUNTS, {"q": "nobody-at-all"})) == set()


# --- Filters --------------------------------------------------------------------------------


def test_status_filter(admin_client, accounts_by_status):
    for status, account in accounts_by_status.items():
        assert listed(admin_client.get(ACCOUNTS, {"status__exact": status})) == {account.pk}


def test_mode_filter(admin_client, account_factory):
    live = account_factory(mode="live")
    test = account_factory(mode="test")
    assert listed(admin_client.get(ACCOUNTS, {"mode": "live"})) == {live.pk}
    assert listed(admin_client.get(ACCOUNTS, {"mode": "test"})) == {test.pk}
    assert listed(admin_client.get(ACCOUNTS, {"mode": "simulated"})) == set()


def test_refresh_expiry_filter(admin_client, account_factory):
    now = timezone.now()
    soon = account_factory(refresh_expires_at=now + timedelta(days=6))
    expired = account_factory(refresh_expires_at=now - timedelta(minutes=1))
    account_factory(refresh_expires_at=now + timedelta(days=8))
    account_factory(refresh_expires_at=now + timedelta(days=2), status=Status.REAUTH_REQUIRED)
    account_factory(refresh_expires_at=None, status=Status.DISCONNECTED)
    assert listed(admin_client.get(ACCOUNTS, {"refresh_expiry": "soon"})) == {soon.pk}
    assert listed(admin_client.get(ACCOUNTS, {"refresh_expiry": "expired"})) == {expired.pk}


def test_has_error_filter(admin_client, account_factory):
    coded = account_factory(last_error_code="network_error")
    described = account_factory(last_error="Smartcar could not be reached.")
    clean = account_factory()
    assert listed(admin_client.get(ACCOUNTS, {"has_error": "yes"})) == {coded.pk, described.pk}
    assert listed(admin_client.get(ACCOUNTS, {"has_error": "no"})) == {clean.pk}


def test_date_hierarchy(admin_client, account_factory):
    recent = account_factory()
    old = account_factory()
    SmartcarAccount.objects.filter(pk=old.pk).update(created_at=timezone.now().replace(year=2021))
    response = admin_client.get(ACCOUNTS)
    assert '<nav class="toplinks">' in response.content.decode()  # the date hierarchy bar
    assert listed(admin_client.get(ACCOUNTS, {"created_at__year": 2021})) == {old.pk}
    year = recent.created_at.year
    assert listed(admin_client.get(ACCOUNTS, {"created_at__year": year})) == {recent.pk}


# --- The account page -----------------------------------------------------------------------


@pytest.mark.parametrize("status", Status.values)
def test_account_page_renders_for_every_status(admin_client, accounts_by_status, status):
    account = accounts_by_status[status]
    response = admin_client.get(change_url(account))
    assert response.status_code == 200
    html = response.content.decode()
    assert account.get_status_display() in html
    assert account.smartcar_user_id in html
    # Read-only: no save button, and no field but hidden ones (CSRF, inline management).
    assert 'name="_save"' not in html
    form = html.split('id="smartcaraccount_form"')[1].split("</form>")[0]
    assert "<textarea" not in form
    assert "<select" not in form
    inputs = re.findall(r"<input[^>]*>", form)
    assert inputs
    assert all('type="hidden"' in tag for tag in inputs)
    assert 'name="access_token"' not in html
    assert 'name="refresh_token"' not in html
    # Vehicles inline, with a link to each vehicle's page.
    for vehicle in account.vehicles.all():
        assert vehicle.vin in html
        assert change_url(vehicle) in html
    # The site user, linked to their own admin page.
    assert f'<a href="{change_url(account.user)}">{account.user} &lt;' in html


def test_account_page_shows_fingerprints_not_tokens(admin_client, account_factory):
    account = account_factory()
    html = admin_client.get(change_url(account)).content.decode()
    assert fingerprint(account.access_token) in html
    assert fingerprint(account.refresh_token) in html
    assert account.access_token not in html
    assert account.refresh_token not in html
    # A fingerprint is a hash, not a piece of the token.
    assert fingerprint(account.access_token) not in account.access_token


def test_account_page_lists_latest_attempts_of_the_owner(admin_client, account_factory):
    account = account_factory()
    now = timezone.now()
    for minutes in range(12):
        attempt = AuthorizationAttemptFactory(
            user=account.user,
            account=account,
            outcome=Outcome.SUCCEEDED,
            completed_at=now,
        )
        AuthorizationAttempt.objects.filter(pk=attempt.pk).update(
            created_at=now - timedelta(minutes=30 + minutes)
        )
    # The newest: a failure, which produced no account but is what support needs to read.
    failed = AuthorizationAttemptFactory(
        user=account.user,
        outcome=Outcome.FAILED,
        error_code="vehicle_incompatible",
        error_description="The user's vehicle is not compatible.",
        completed_at=now + timedelta(seconds=42),
    )
    AuthorizationAttemptFactory()  # someone else's
    response = admin_client.get(change_url(account))
    rows = response.context["latest_attempts"]
    assert len(rows) == 10
    assert rows[0]["attempt"] == failed
    assert not rows[0]["this_account"]
    assert all(row["this_account"] for row in rows[1:])
    html = response.content.decode()
    assert "vehicle_incompatible" in html
    assert change_url(failed) in html
    assert f"{ATTEMPTS}?user__id__exact={account.user_id}" in html


def test_all_attempts_link_filters_by_user(admin_client, account_factory):
    account = account_factory()
    mine = AuthorizationAttemptFactory(user=account.user)
    AuthorizationAttemptFactory()
    assert listed(admin_client.get(ATTEMPTS, {"user__id__exact": account.user_id})) == {mine.pk}


# --- Read-only: no add, no change, careful delete -------------------------------------------


def test_no_add_anywhere(admin_client, accounts_by_status):
    for model in ("smartcaraccount", "vehicle", "authorizationattempt"):
        assert admin_client.get(reverse(f"admin:vehicle_auth_{model}_add")).status_code == 403
    html = admin_client.get(reverse("admin:index")).content.decode()
    for model in ("smartcaraccount", "vehicle", "authorizationattempt"):
        assert reverse(f"admin:vehicle_auth_{model}_add") not in html
    assert (
        'class="addlink"'
        not in admin_client.get(ACCOUNTS).content.decode().split('id="content-main"')[1]
    )


def test_nothing_can_be_changed_by_post(admin_client, account_factory, vehicle_factory):
    account = account_factory()
    vehicle = vehicle_factory(account=account)
    before = (account.access_token, account.refresh_token, account.status)
    response = admin_client.post(
        change_url(account),
        {"access_token": "forged", "refresh_token": "forged", "status": "disconnected"},
    )
    assert response.status_code == 403
    account.refresh_from_db()
    assert (account.access_token, account.refresh_token, account.status) == before
    assert admin_client.post(change_url(vehicle), {"vin": "X"}).status_code == 403
    vehicle.refresh_from_db()
    assert vehicle.vin != "X"


def test_live_account_cannot_be_deleted(admin_client, accounts_by_status):
    for status in (Status.ACTIVE, Status.REAUTH_REQUIRED):
        account = accounts_by_status[status]
        delete = reverse("admin:vehicle_auth_smartcaraccount_delete", args=[account.pk])
        assert admin_client.get(delete).status_code == 403
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        assert SmartcarAccount.objects.filter(pk=account.pk).exists()
        assert delete not in admin_client.get(change_url(account)).content.decode()
    assert "delete_selected" not in action_names(admin_client.get(ACCOUNTS))


def test_disconnected_account_can_be_deleted(admin_client, accounts_by_status):
    account = accounts_by_status[Status.DISCONNECTED]
    delete = reverse("admin:vehicle_auth_smartcaraccount_delete", args=[account.pk])
    assert delete in admin_client.get(change_url(account)).content.decode()
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not SmartcarAccount.objects.filter(pk=account.pk).exists()


def test_vehicles_of_a_live_account_cannot_be_deleted(admin_client, accounts_by_status):
    vehicle = accounts_by_status[Status.ACTIVE].vehicles.first()
    delete = reverse("admin:vehicle_auth_vehicle_delete", args=[vehicle.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Vehicle.objects.filter(pk=vehicle.pk).exists()
    assert "delete_selected" not in action_names(admin_client.get(VEHICLES))


def test_deleting_a_site_user_waits_for_disconnect(admin_client, account_factory):
    """Deleting a user would drop a live grant unrevoked: the admin refuses until disconnected."""
    account = account_factory()
    AuthorizationAttemptFactory(user=account.user, account=account)
    delete_user = reverse("admin:auth_user_delete", args=[account.user_id])
    response = admin_client.get(delete_user)
    assert response.context["perms_lacking"] == {"Smartcar account"}
    admin_client.post(delete_user, {"post": "yes"})
    assert get_user_model().objects.filter(pk=account.user_id).exists()

    SmartcarAccount.objects.filter(pk=account.pk).update(status=Status.DISCONNECTED)
    assert not admin_client.get(delete_user).context["perms_lacking"]
    assert admin_client.post(delete_user, {"post": "yes"}).status_code == 302
    assert not get_user_model().objects.filter(pk=account.user_id).exists()
    assert not AuthorizationAttempt.objects.exists()


def test_attempts_have_no_bulk_delete(admin_client, attempt_factory):
    attempt = attempt_factory()
    assert "delete_selected" not in action_names(admin_client.get(ATTEMPTS))
    # One attempt holds no secret: whoever has the delete permission may remove it.
    delete = reverse("admin:vehicle_auth_authorizationattempt_delete", args=[attempt.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not AuthorizationAttempt.objects.exists()


# --- Authorization attempts and vehicles ----------------------------------------------------


@pytest.fixture
def attempts(db: None) -> dict[str, AuthorizationAttempt]:
    user = UserFactory(username="petra", email="petra@example.org")
    account = SmartcarAccountFactory(user=user)
    made = {
        "succeeded": AuthorizationAttemptFactory(
            user=user, account=account, outcome=Outcome.SUCCEEDED
        ),
        "denied": AuthorizationAttemptFactory(
            user=user,
            outcome=Outcome.DENIED,
            error_code="access_denied",
            error_description="User denied access to application.",
        ),
        "failed": AuthorizationAttemptFactory(
            outcome=Outcome.FAILED,
            error_code="server_error",
            error_description="Unexpected server error. Please try again.",
        ),
        "pending": AuthorizationAttemptFactory(),
        "expired": AuthorizationAttemptFactory(outcome=Outcome.EXPIRED),
    }
    for name, seconds in (("succeeded", 4.25), ("denied", 185), ("failed", 7300)):
        attempt = made[name]
        attempt.completed_at = attempt.created_at + timedelta(seconds=seconds)
        attempt.save(update_fields=["completed_at"])
    return made


def test_attempt_changelist(admin_client, attempts):
    response = admin_client.get(ATTEMPTS)
    assert listed(response) == {a.pk for a in attempts.values()}
    html = response.content.decode()
    for text in ("4.2 s", "3 min 5 s", "2 h 1 min", "access_denied", "User denied access"):
        assert text in html
    for outcome in Outcome.labels:
        assert f"</span> {outcome}</span>" in html
    account = attempts["succeeded"].account
    assert f'<a href="{change_url(account)}">{account.smartcar_user_id}</a>' in html


def test_attempt_filters_and_search(admin_client, attempts):
    assert listed(admin_client.get(ATTEMPTS, {"outcome__exact": "denied"})) == {
        attempts["denied"].pk
    }
    assert listed(admin_client.get(ATTEMPTS, {"error_code": "server_error"})) == {
        attempts["failed"].pk
    }
    assert listed(admin_client.get(ATTEMPTS, {"q": "petra"})) == {
        attempts["succeeded"].pk,
        attempts["denied"].pk,
    }
    assert listed(admin_client.get(ATTEMPTS, {"q": "example.org"})) == {
        attempts["succeeded"].pk,
        attempts["denied"].pk,
    }


@pytest.mark.parametrize("name", ["succeeded", "denied", "failed", "pending", "expired"])
def test_attempt_page_is_read_only(admin_client, attempts, name):
    attempt = attempts[name]
    response = admin_client.get(change_url(attempt))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html
    assert attempt.state_hash not in html
    assert attempt.session_hash not in html
    assert attempt.get_outcome_display() in html
    assert change_url(attempt.user) in html
    assert admin_client.post(change_url(attempt), {"outcome": "succeeded"}).status_code == 403


def test_vehicle_search_and_links(admin_client, two_owners):
    wanted, _other = two_owners
    rivian = wanted.vehicles.get(make="RIVIAN")
    for term in ("rivian", "R1T", "NN000123", "v-r1t-1"):
        assert listed(admin_client.get(VEHICLES, {"q": term})) == {rivian.pk}, term
    html = admin_client.get(VEHICLES, {"q": "rivian"}).content.decode()
    assert f'<a href="{change_url(wanted)}">{wanted.smartcar_user_id}</a>' in html
    assert f'<a href="{change_url(wanted.user)}">wanda</a>' in html
    page = admin_client.get(change_url(rivian))
    assert page.status_code == 200
    assert change_url(wanted) in page.content.decode()
    assert 'name="_save"' not in page.content.decode()


# --- Permissions ----------------------------------------------------------------------------


def test_staff_without_permissions_see_nothing(accounts_by_status):
    client = staff_client()
    for url in CHANGELISTS:
        assert client.get(url).status_code == 403
    assert client.get(change_url(accounts_by_status[Status.ACTIVE])).status_code == 403
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "Smartcar" not in index.content.decode()
    assert client.get(reverse("admin:app_list", args=["vehicle_auth"])).status_code == 404


def test_view_permission_shows_pages_but_no_actions(accounts_by_status):
    client = staff_client("view_smartcaraccount")
    response = client.get(ACCOUNTS)
    assert listed(response) == {a.pk for a in accounts_by_status.values()}
    assert action_names(response).isdisjoint(ACTIONS)
    assert client.get(change_url(accounts_by_status[Status.ACTIVE])).status_code == 200
    # Without the view permission on vehicles and attempts, those stay hidden too.
    assert client.get(VEHICLES).status_code == 403
    assert (
        "latest_attempts" not in client.get(change_url(accounts_by_status[Status.ACTIVE])).context
    )


def test_change_permission_does_not_grant_actions(accounts_by_status):
    client = staff_client("view_smartcaraccount", "change_smartcaraccount")
    assert action_names(client.get(ACCOUNTS)).isdisjoint(ACTIONS)


@pytest.mark.parametrize(
    ("codename", "action"),
    [
        ("refresh_tokens", "refresh_tokens_now"),
        ("verify_connection", "verify_connection"),
        ("disconnect_account", "disconnect_accounts"),
    ],
)
def test_each_action_needs_its_own_permission(accounts_by_status, codename, action):
    client = staff_client("view_smartcaraccount", codename)
    assert action_names(client.get(ACCOUNTS)) & set(ACTIONS) == {action}


def test_posting_an_action_without_its_permission_does_nothing(accounts_by_status):
    account = accounts_by_status[Status.ACTIVE]
    client = staff_client("view_smartcaraccount", "refresh_tokens")
    response = run_action(client, "disconnect_accounts", [account], post="yes")
    assert "No action selected." in messages_of(response)
    account.refresh_from_db()
    assert account.status == Status.ACTIVE


@pytest.mark.parametrize("action", ACTIONS)
def test_too_many_accounts_for_one_action(admin_client, account_factory, monkeypatch, action):
    monkeypatch.setattr(admin_actions, "MAX_ACCOUNTS_PER_ACTION", 2)
    chosen = account_factory.create_batch(3)
    response = run_action(admin_client, action, chosen, post="yes")
    [message] = messages_of(response)
    assert message.startswith("Select at most 2 accounts")
    assert not SmartcarAccount.objects.exclude(status=Status.ACTIVE).exists()


def test_actions_honour_retry_after(admin_client, account_factory):
    """Smartcar asked us to wait (429 Retry-After): no action calls it before then."""
    account = account_factory(
        access_expires_at=timezone.now(),
        refresh_not_before=timezone.now() + timedelta(minutes=5),
    )
    [refreshed] = messages_of(run_action(admin_client, "refresh_tokens_now", [account]))
    assert re.search(r"not refreshed, Smartcar asked us to wait (299|300|301) s", refreshed)
    [verified] = messages_of(run_action(admin_client, "verify_connection", [account]))
    assert "not verified (retry_later)" in verified
    [disconnected] = messages_of(
        run_action(admin_client, "disconnect_accounts", [account], post="yes")
    )
    assert "not disconnected, Smartcar failed (retry_later: " in disconnected
    account.refresh_from_db()
    assert account.status == Status.ACTIVE
    assert account.last_refreshed_at is None


def test_links_fall_back_to_text_without_an_admin_page(user):
    assert admin_link(user, "alice", site="elsewhere") == "alice"
    assert admin_link(user) == f'<a href="{change_url(user)}">alice</a>'


def test_account_page_without_the_attempts_admin(admin_client, account_factory, monkeypatch):
    account = account_factory()
    AuthorizationAttemptFactory(user=account.user, account=account)
    monkeypatch.delitem(django_admin.site._registry, AuthorizationAttempt)
    response = admin_client.get(change_url(account))
    assert response.status_code == 200
    assert "latest_attempts" not in response.context
    assert all(a.last_error_code == "" for a in SmartcarAccount.objects.all())


# --- Query counts ---------------------------------------------------------------------------


@pytest.fixture
def thousand_accounts(db: None) -> None:
    """1,000 accounts with 3 vehicles each, written in a few statements."""
    create_bulk_accounts(1000)
    assert Vehicle.objects.count() == 3000


QUERY_BUDGET = 10


QUERIES = (
    {},
    {"q": "TESLA"},
    {"q": "bulk0"},
    {"status__exact": "active", "has_error": "yes"},
    {"refresh_expiry": "soon", "mode": "test"},
    {"o": "-4"},
    {"p": "5"},
)


def test_account_changelist_query_count(
    admin_client, thousand_accounts, django_assert_max_num_queries
):
    for query in QUERIES:
        with django_assert_max_num_queries(QUERY_BUDGET):
            response = admin_client.get(ACCOUNTS, query)
        assert response.status_code == 200, query
        shown = response.context["cl"].result_list
        assert 0 < len(shown) <= 100, query
        assert all(a.vehicle_total == 3 for a in shown), query


def test_account_changelist_query_count_for_staff(thousand_accounts, django_assert_max_num_queries):
    client = staff_client("view_smartcaraccount", "refresh_tokens", "verify_connection")
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = client.get(ACCOUNTS)
    assert len(response.context["cl"].result_list) == 100


@pytest.mark.parametrize("url", [VEHICLES, ATTEMPTS])
def test_other_changelists_query_count(
    admin_client, thousand_accounts, django_assert_max_num_queries, url
):
    users = list(get_user_model().objects.filter(username__startswith="bulk")[:100])
    AuthorizationAttempt.objects.bulk_create(
        AuthorizationAttempt(
            user=user,
            state_hash=f"{n:064x}",
            session_hash="0" * 64,
            mode="test",
            expires_at=timezone.now(),
            account=user.smartcar_accounts.first(),
        )
        for n, user in enumerate(users)
    )
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = admin_client.get(url)
    assert len(response.context["cl"].result_list) == 100


def test_account_page_query_count(admin_client, account_factory, django_assert_max_num_queries):
    """Session, user, account with its user, vehicles, attempts, content type: whatever the
    number of cars and attempts."""
    account = account_factory()
    VehicleFactory.create_batch(20, account=account)
    AuthorizationAttemptFactory.create_batch(15, user=account.user, account=account)
    with django_assert_max_num_queries(7):
        response = admin_client.get(change_url(account))
    assert len(response.context["latest_attempts"]) == 10
    assert response.content.decode().count('class="field-vin"') == 20


# --- No token on any page -------------------------------------------------------------------


def token_pieces(value: str) -> Iterator[str]:
    """The token, its 6-character prefix and suffix, and every 10-character window of it."""
    yield value
    yield value[:6]
    yield value[-6:]
    for start in range(len(value) - 9):
        yield value[start : start + 10]


def assert_no_token(html: str, accounts: list[SmartcarAccount]) -> None:
    for account in accounts:
        for token in (account.access_token, account.refresh_token):
            if not token:
                continue
            for piece in token_pieces(str(token)):
                assert piece not in html, f"a piece of a token ({len(piece)} chars) leaked"


def admin_pages(accounts: list[SmartcarAccount]) -> Iterator[str]:
    yield reverse("admin:index")
    yield reverse("admin:app_list", args=["vehicle_auth"])
    yield from CHANGELISTS
    for account in accounts:
        yield change_url(account)
        yield reverse("admin:vehicle_auth_smartcaraccount_history", args=[account.pk])
        yield f"{ACCOUNTS}?q={account.user.username}"
        yield f"{ACCOUNTS}?q={account.smartcar_user_id}"
        yield f"{ATTEMPTS}?user__id__exact={account.user_id}"
        for vehicle in account.vehicles.all():
            yield change_url(vehicle)
            yield f"{ACCOUNTS}?q={vehicle.vin}"
            yield f"{VEHICLES}?q={vehicle.vin}"
        for attempt in AuthorizationAttempt.objects.filter(user=account.user):
            yield change_url(attempt)
    for query in ("status__exact=active", "has_error=yes", "refresh_expiry=soon", "mode=test"):
        yield f"{ACCOUNTS}?{query}"


# Smartcar's tokens are UUIDs, and any 6 hex digits may turn up on a page by chance (ids,
# fingerprints). Tokens drawn from upper-case consonants cannot, so a hit is a real leak.
TOKEN_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def distinctive_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))


def test_no_page_shows_a_token(admin_client, accounts_by_status):
    accounts = list(accounts_by_status.values())
    for account in accounts:
        # Tokens even on the disconnected account, which normally holds none.
        account.access_token = distinctive_token()
        account.refresh_token = distinctive_token()
        account.last_error_code = "invalid_grant"
        account.refresh_expires_at = timezone.now() + timedelta(days=1)
        account.save()
        AuthorizationAttemptFactory(
            user=account.user, outcome=Outcome.FAILED, error_code="server_error"
        )
    pages = list(admin_pages(accounts))
    assert len(pages) > 40
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_no_token(response.content.decode(), accounts)
    for account in accounts:
        delete = reverse("admin:vehicle_auth_smartcaraccount_delete", args=[account.pk])
        response = admin_client.get(delete)
        assert response.status_code == (200 if account.status == Status.DISCONNECTED else 403)
        assert_no_token(response.content.decode(), accounts)
    confirm = run_action(admin_client, "disconnect_accounts", accounts)
    assert "Yes, disconnect" in confirm.content.decode()
    assert_no_token(confirm.content.decode(), accounts)


# --- Actions through the sandbox ------------------------------------------------------------


@pytest.fixture
def link_account(smartcar_sandbox: Any) -> Callable[..., SmartcarAccount]:
    """Link a real account at the sandbox (a code exchanged by the SDK), saved like the flow.

    The sandbox's request log is emptied afterwards.
    """

    def link(user: Any, email: str = "3-vehicles@smartcar.com") -> SmartcarAccount:
        account = link_sandbox_account(user, smartcar_sandbox, email=email)
        smartcar_sandbox.reset()  # count only the calls the test itself causes
        return SmartcarAccount.objects.get(pk=account.pk)

    return link


@pytest.fixture
def linked(link_account: Callable[..., SmartcarAccount], user: Any) -> SmartcarAccount:
    account = link_account(user)
    assert account.vehicles.count() == 3
    return account


def assert_clean(response: Any, *accounts: SmartcarAccount) -> None:
    assert response.status_code == 200
    assert_no_token(response.content.decode(), list(accounts))


@pytest.mark.django_db(transaction=True)
def test_refresh_action(admin_client, linked, smartcar_sandbox):
    old_refresh = linked.refresh_token
    response = run_action(admin_client, "refresh_tokens_now", [linked])
    assert_clean(response, linked)
    [message] = messages_of(response)
    assert message.startswith("alice (Smartcar user ")
    assert "tokens refreshed" in message
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 1
    fresh = SmartcarAccount.objects.get(pk=linked.pk)
    assert fresh.refresh_token != old_refresh
    assert fresh.last_refreshed_at is not None
    assert old_refresh not in message
    assert fresh.refresh_token not in message


@pytest.mark.django_db(transaction=True)
def test_refresh_action_when_smartcar_fails(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.inject("token", status=500, times=1)
    response = run_action(admin_client, "refresh_tokens_now", [linked])
    assert_clean(response, linked)
    [message] = messages_of(response)
    assert "not refreshed, Smartcar failed" in message
    account = SmartcarAccount.objects.get(pk=linked.pk)
    assert account.refresh_token == linked.refresh_token
    assert account.status == Status.ACTIVE
    assert account.last_error_code


@pytest.mark.django_db(transaction=True)
def test_refresh_action_when_smartcar_refuses_the_token(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.revoke_tokens()
    response = run_action(admin_client, "refresh_tokens_now", [linked])
    [message] = messages_of(response)
    assert "Smartcar refused the refresh token" in message
    account = SmartcarAccount.objects.get(pk=linked.pk)
    assert account.status == Status.REAUTH_REQUIRED
    assert account.last_error_code == "invalid_grant"


@pytest.mark.django_db(transaction=True)
def test_actions_stop_asking_a_failing_smartcar(
    admin_client, link_account, user, other_user, account_factory, smartcar_sandbox
):
    retired = account_factory(status=Status.DISCONNECTED)
    first = link_account(user)
    second = link_account(other_user, email="1-vehicles@smartcar.com")
    smartcar_sandbox.inject("token", status=503)
    before = smartcar_sandbox.request_count("token")
    response = run_action(admin_client, "refresh_tokens_now", [first, second, retired])
    texts = messages_of(response)
    # Newest first: `second` fails, then neither `first` nor `retired` is attempted.
    assert smartcar_sandbox.request_count("token") - before == 1
    assert len(texts) == 2
    assert "Smartcar failed" in texts[0]
    assert "Not attempted, because Smartcar is failing" in texts[1]
    assert account_label_in(texts[1], first)
    assert account_label_in(texts[1], retired)


def account_label_in(text: str, account: SmartcarAccount) -> bool:
    return admin_actions.account_label(account) in text


@pytest.mark.django_db(transaction=True)
def test_refresh_action_skips_accounts_that_are_not_active(
    admin_client, account_factory, smartcar_sandbox
):
    account = account_factory(status=Status.REAUTH_REQUIRED)
    response = run_action(admin_client, "refresh_tokens_now", [account])
    assert messages_of(response) == [
        f"{admin_actions.account_label(account)}: not refreshed, the account is "
        "reconnection required."
    ]
    assert smartcar_sandbox.request_count() == 0


@pytest.mark.django_db(transaction=True)
def test_verify_action(admin_client, linked, smartcar_sandbox):
    response = run_action(admin_client, "verify_connection", [linked])
    assert_clean(response, linked)
    assert messages_of(response) == [
        f"{admin_actions.account_label(linked)}: connected, Smartcar accepts its token."
    ]
    assert smartcar_sandbox.request_count("user") == 1
    assert smartcar_sandbox.request_count("token") == 0


@pytest.mark.django_db(transaction=True)
def test_verify_action_refreshes_a_token_smartcar_expired(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.expire_access_tokens()
    response = run_action(admin_client, "verify_connection", [linked])
    assert "connected, Smartcar accepts its token" in messages_of(response)[0]
    assert smartcar_sandbox.request_count("user") == 2
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 1
    assert SmartcarAccount.objects.get(pk=linked.pk).access_token != linked.access_token


@pytest.mark.django_db(transaction=True)
def test_verify_action_when_smartcar_revoked_everything(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.revoke_tokens()
    response = run_action(admin_client, "verify_connection", [linked])
    [message] = messages_of(response)
    assert "not verified (reauth_required)" in message
    assert SmartcarAccount.objects.get(pk=linked.pk).status == Status.REAUTH_REQUIRED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("status", "code"), [(500, "SERVER:INTERNAL"), (403, "PERMISSION")])
def test_verify_action_when_smartcar_fails(
    admin_client, link_account, user, other_user, smartcar_sandbox, status, code
):
    first = link_account(user)
    second = link_account(other_user, email="1-vehicles@smartcar.com")
    smartcar_sandbox.inject("user", status=status)
    response = run_action(admin_client, "verify_connection", [first, second])
    assert_clean(response, first, second)
    texts = messages_of(response)
    assert f"not verified ({code})" in texts[0]
    if status >= 500:
        # Smartcar itself is failing: the second account is not asked about.
        assert "Not attempted, because Smartcar is failing" in texts[1]
        assert smartcar_sandbox.request_count("user") == 1
    else:
        assert f"not verified ({code})" in texts[1]
        assert smartcar_sandbox.request_count("user") == 2
    assert set(SmartcarAccount.objects.values_list("status", flat=True)) == {Status.ACTIVE}


@pytest.mark.django_db(transaction=True)
def test_verify_action_reports_a_token_of_another_user(admin_client, linked, smartcar_sandbox):
    SmartcarAccount.objects.filter(pk=linked.pk).update(smartcar_user_id="someone-else")
    response = run_action(admin_client, "verify_connection", [linked])
    [message] = messages_of(response)
    assert "not verified (user_mismatch)" in message
    assert linked.smartcar_user_id in message


@pytest.mark.django_db(transaction=True)
def test_verify_action_skips_a_disconnected_account(
    admin_client, account_factory, smartcar_sandbox
):
    account = account_factory(status=Status.DISCONNECTED)
    [message] = messages_of(run_action(admin_client, "verify_connection", [account]))
    assert "not verified (not_active)" in message
    assert smartcar_sandbox.request_count() == 0


@pytest.mark.django_db(transaction=True)
def test_disconnect_action_asks_first(admin_client, linked, smartcar_sandbox):
    response = run_action(admin_client, "disconnect_accounts", [linked])
    assert_clean(response, linked)
    html = response.content.decode()
    assert "Disconnect these Smartcar accounts?" in html
    for vehicle in linked.vehicles.all():
        assert vehicle.smartcar_id in html
    assert smartcar_sandbox.request_count() == 0
    assert SmartcarAccount.objects.get(pk=linked.pk).status == Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_disconnect_action(admin_client, linked, smartcar_sandbox):
    response = run_action(admin_client, "disconnect_accounts", [linked], post="yes")
    assert_clean(response, linked)
    assert messages_of(response) == [
        f"{admin_actions.account_label(linked)}: disconnected; Smartcar revoked the site's access."
    ]
    assert smartcar_sandbox.request_count("disconnect") == 3
    account = SmartcarAccount.objects.get(pk=linked.pk)
    assert account.status == Status.DISCONNECTED
    assert account.access_token == account.refresh_token == ""
    assert not account.vehicles.exists()


@pytest.mark.django_db(transaction=True)
def test_disconnect_action_when_smartcar_fails(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.inject("disconnect", status=500)
    response = run_action(admin_client, "disconnect_accounts", [linked], post="yes")
    assert_clean(response, linked)
    [message] = messages_of(response)
    assert "not disconnected, Smartcar did not release 3 vehicles" in message
    account = SmartcarAccount.objects.get(pk=linked.pk)
    assert account.status == Status.ACTIVE
    assert account.access_token == linked.access_token
    assert account.vehicles.count() == 3


@pytest.mark.django_db(transaction=True)
def test_disconnect_action_when_smartcar_is_unreachable(admin_client, linked, smartcar_sandbox):
    # The access token is due, so disconnecting refreshes first: that fails.
    SmartcarAccount.objects.filter(pk=linked.pk).update(access_expires_at=timezone.now())
    smartcar_sandbox.inject("token", status=502, times=1)
    [message] = messages_of(run_action(admin_client, "disconnect_accounts", [linked], post="yes"))
    assert "not disconnected, Smartcar failed" in message
    assert "Nothing was changed" in message
    assert SmartcarAccount.objects.get(pk=linked.pk).status == Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_disconnect_action_after_smartcar_refused_the_token(admin_client, linked, smartcar_sandbox):
    smartcar_sandbox.revoke_tokens()
    SmartcarAccount.objects.filter(pk=linked.pk).update(status=Status.REAUTH_REQUIRED)
    [message] = messages_of(run_action(admin_client, "disconnect_accounts", [linked], post="yes"))
    assert "access could not be revoked there" in message
    assert SmartcarAccount.objects.get(pk=linked.pk).status == Status.DISCONNECTED
    assert smartcar_sandbox.request_count("disconnect") == 0


@pytest.mark.django_db(transaction=True)
def test_disconnect_action_leaves_a_disconnected_account_alone(
    admin_client, account_factory, smartcar_sandbox
):
    account = account_factory(status=Status.DISCONNECTED)
    [message] = messages_of(run_action(admin_client, "disconnect_accounts", [account], post="yes"))
    assert message.endswith("already disconnected.")
    assert smartcar_sandbox.request_count() == 0


@pytest.mark.django_db(transaction=True)
def test_staff_with_the_permission_can_act(linked, smartcar_sandbox):
    client = staff_client("view_smartcaraccount", "verify_connection")
    response = run_action(client, "verify_connection", [linked])
    assert "connected, Smartcar accepts its token" in messages_of(response)[0]
    assert smartcar_sandbox.request_count("user") == 1
