"""Deleting a site user revokes their cars at Smartcar (best effort) and leaves no token."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
import smartcar
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from tests.factories import UserFactory
from tests.fault_helpers import closed_origin, point_smartcar_at
from vehicle_auth import receivers, tokens
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle

pytestmark = pytest.mark.django_db(transaction=True)

Status = SmartcarAccount.Status
REVOKES = {"endpoint": "disconnect", "status": 200}


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="vehicle_auth")
    return caplog


def expire(account: SmartcarAccount) -> None:
    """Our copy of the access token has expired (Smartcar's copy still works)."""
    account.access_expires_at = timezone.now() - timedelta(minutes=1)
    account.save(update_fields=["access_expires_at"])


def token_values(*accounts: SmartcarAccount) -> list[str]:
    return [value for a in accounts for value in (str(a.access_token), str(a.refresh_token))]


def raw_database_text() -> str:
    """Every text value of every table of the app, as stored."""
    text = []
    with connection.cursor() as cursor:
        for model in (SmartcarAccount, Vehicle, AuthorizationAttempt):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table}")
            text.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(text)


def test_deleting_a_user_revokes_every_car_and_leaves_no_token(
    user, other_user, link_account, smartcar_sandbox, logs
):
    two_cars = link_account(user, email="2-vehicles@smartcar.com")
    one_car = link_account(user, email="owner@example.com", make="TESLA")
    others = link_account(other_user, email="neighbour@example.com")
    secrets = token_values(two_cars, one_car)

    user.delete()

    assert smartcar_sandbox.request_count(**REVOKES) == 3
    assert smartcar_sandbox.request_count("disconnect") == 3
    assert not get_user_model().objects.filter(username="alice").exists()
    assert list(SmartcarAccount.objects.all()) == [others]
    assert Vehicle.objects.exclude(account=others).count() == 0
    assert not AuthorizationAttempt.objects.filter(user_id=user.pk).exists()
    assert not any(secret in raw_database_text() for secret in secrets)
    # At Smartcar the old grants hold no car any more; the neighbour's still works.
    assert smartcar.get_vehicles(two_cars.access_token).vehicles == []
    assert smartcar.get_vehicles(one_car.access_token).vehicles == []
    neighbours_car = others.vehicles.get().smartcar_id
    assert tokens.get_vehicle(other_user, neighbours_car).attributes().make == "CHEVROLET"
    assert f"Deleted Smartcar account {two_cars.pk}: 2 vehicles revoked at Smartcar" in (
        logs.messages
    )


def test_an_expired_access_token_is_refreshed_to_revoke(user, link_account, smartcar_sandbox):
    account = link_account(user)
    expire(account)

    user.delete()

    assert smartcar_sandbox.request_count("token", detail="refresh_token", status=200) == 1
    assert smartcar_sandbox.request_count(**REVOKES) == 1
    assert not SmartcarAccount.objects.exists()


def test_deleting_several_users_at_once_revokes_each(link_account, smartcar_sandbox):
    users = [UserFactory(username=f"driver{n}") for n in range(3)]
    for n, owner in enumerate(users):
        link_account(owner, email=f"driver{n}@example.com")

    get_user_model().objects.filter(pk__in=[u.pk for u in users]).delete()

    assert smartcar_sandbox.request_count(**REVOKES) == 3
    assert not SmartcarAccount.objects.exists()


def test_a_deletion_rolled_back_revokes_nothing(user, link_account, smartcar_sandbox):
    account = link_account(user)

    def delete_then_fail() -> None:
        with transaction.atomic():
            user.delete()
            raise RuntimeError("the deletion fails later on")

    with pytest.raises(RuntimeError):
        delete_then_fail()

    assert smartcar_sandbox.request_count("disconnect") == 0
    assert SmartcarAccount.objects.get() == account
    still_there = get_user_model().objects.get(username="alice")
    car = account.vehicles.get().smartcar_id
    assert tokens.get_vehicle(still_there, car).attributes().make == "CHEVROLET"


@pytest.mark.parametrize(
    ("endpoint", "fault", "expired", "code"),
    [
        ("disconnect", {"status": 500}, False, "SERVER:INTERNAL"),
        ("disconnect", {"status": 429, "retry_after": 30}, False, "RATE_LIMIT"),
        ("disconnect", {"hang": 30}, False, "timeout"),
        ("token", {"status": 503}, True, "refreshing failed"),
        ("token", {"error_type": "invalid_grant"}, True, "invalid_grant"),
    ],
    ids=["revoke-500", "revoke-429", "revoke-hangs", "refresh-503", "refresh-refused"],
)
def test_smartcar_failing_never_blocks_the_deletion(
    user, link_account, smartcar_sandbox, settings, logs, endpoint, fault, expired, code
):
    settings.VEHICLE_AUTH_REQUEST_TIMEOUT = 1
    account = link_account(user)
    if expired:
        expire(account)
    smartcar_sandbox.inject(endpoint, **fault)
    started = time.monotonic()

    user.delete()

    assert time.monotonic() - started < 1 + 2
    assert not get_user_model().objects.filter(pk=account.user_id).exists()
    assert not SmartcarAccount.objects.exists()
    assert not Vehicle.objects.exists()
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert any(
        f"Deleted Smartcar account {account.pk}" in message and code in message
        for message in warnings
    ), warnings


def test_unreachable_smartcar_never_blocks_the_deletion(
    user, link_account, smartcar_sandbox, settings, logs
):
    account = link_account(user)
    point_smartcar_at(settings, closed_origin())

    user.delete()

    assert not SmartcarAccount.objects.exists()
    assert (
        f"Deleted Smartcar account {account.pk}: 1 of 1 vehicles could not be revoked "
        "(network_error)" in logs.messages
    )


def test_an_account_needing_reauthorization_is_logged_not_revoked(
    user, link_account, smartcar_sandbox, logs
):
    account = link_account(user)
    account.status = Status.REAUTH_REQUIRED
    account.save(update_fields=["status"])
    expire(account)
    before = smartcar_sandbox.request_count()

    user.delete()

    assert smartcar_sandbox.request_count() == before
    assert not SmartcarAccount.objects.exists()
    assert any(
        f"Deleted Smartcar account {account.pk} (reauth_required) could not be revoked" in m
        for m in logs.messages
    )


def test_an_account_needing_reauthorization_is_revoked_while_its_token_lasts(
    user, link_account, smartcar_sandbox
):
    account = link_account(user)
    account.status = Status.REAUTH_REQUIRED
    account.save(update_fields=["status"])

    user.delete()

    assert smartcar_sandbox.request_count(**REVOKES) == 1


def test_users_without_a_live_grant_cost_no_call(user, account_factory, smartcar_sandbox):
    account_factory(
        user=user,
        status=Status.DISCONNECTED,
        access_token="",
        refresh_token="",
        access_expires_at=None,
        refresh_expires_at=None,
    )
    bystander = UserFactory(username="no-cars")

    user.delete()
    bystander.delete()

    assert smartcar_sandbox.request_count() == 0
    assert not SmartcarAccount.objects.exists()


def test_an_unexpected_error_is_logged_and_swallowed(user, link_account, smartcar_sandbox, logs):
    account = link_account(user)
    pending = receivers.pending_revocations(user)
    # Not a sequence of ids: the SDK call cannot even start.
    broken = [
        receivers.PendingRevocation(**{**item.__dict__, "vehicle_ids": 5}) for item in pending
    ]

    outcomes = receivers.revoke_all(broken)

    assert outcomes == {account.pk: receivers.Revocation.FAILED}
    assert f"Revoking deleted Smartcar account {account.pk} failed unexpectedly" in logs.messages


def test_pending_revocations_never_show_a_token(user, link_account, smartcar_sandbox):
    account = link_account(user)
    (pending,) = receivers.pending_revocations(user)

    assert pending.vehicle_ids == (account.vehicles.get().smartcar_id,)
    assert pending.access_usable
    assert str(account.access_token) not in repr(pending)
    assert str(account.refresh_token) not in repr(pending)


def test_the_receiver_is_connected_to_the_user_model():
    from django.db.models.signals import pre_delete

    assert pre_delete.has_listeners(get_user_model())
    assert any(
        receiver_id[0] == "vehicle_auth.revoke_when_user_deleted"
        for receiver_id, *_ in pre_delete.receivers
    )
