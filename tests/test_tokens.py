"""Fresh tokens for host code: get_vehicle, refresh with rotation, call_vehicle, failures."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import smartcar
from cryptography.fernet import Fernet
from django.utils import timezone
from smartcar.exception import SmartcarException

import vehicle_auth
from vehicle_auth import signals, tokens
from vehicle_auth.exceptions import (
    EncryptionKeyError,
    NotLinked,
    ReauthorizationRequired,
    SmartcarError,
    SmartcarUnavailable,
    VehicleAuthError,
)
from vehicle_auth.models import SmartcarAccount

pytestmark = pytest.mark.django_db(transaction=True)

REFRESHES = {"endpoint": "token", "detail": "refresh_token"}


def expire(account: SmartcarAccount, seconds: float = -60) -> SmartcarAccount:
    """Make our copy of the access token expire `seconds` from now (Smartcar's is untouched)."""
    account.access_expires_at = timezone.now() + timedelta(seconds=seconds)
    account.save(update_fields=["access_expires_at"])
    return account


def vehicle_id(account: SmartcarAccount) -> str:
    return account.vehicles.get().smartcar_id


def stored(account: SmartcarAccount) -> tuple:
    account.refresh_from_db()
    return (
        account.access_token,
        account.refresh_token,
        account.access_expires_at,
        account.refresh_expires_at,
        account.status,
    )


@pytest.fixture
def received():
    """Calls of the token signals, as (signal name, kwargs)."""
    calls: list[tuple[str, dict]] = []

    def on_refreshed(**kwargs):
        calls.append(("tokens_refreshed", kwargs))

    def on_reauth(**kwargs):
        calls.append(("reauthorization_required", kwargs))

    signals.tokens_refreshed.connect(on_refreshed)
    signals.reauthorization_required.connect(on_reauth)
    yield calls
    signals.tokens_refreshed.disconnect(on_refreshed)
    signals.reauthorization_required.disconnect(on_reauth)


# --- is_fresh -------------------------------------------------------------------------------


def test_is_fresh_needs_the_margin(account_factory, settings):
    now = timezone.now()
    account = account_factory(access_expires_at=now + timedelta(minutes=6))
    assert tokens.is_fresh(account, now=now)
    assert not tokens.is_fresh(account, margin=timedelta(minutes=7), now=now)
    settings.VEHICLE_AUTH_REFRESH_MARGIN = 10 * 60
    assert not tokens.is_fresh(account, now=now)


def test_is_fresh_is_false_without_token_or_expiry(account_factory):
    assert not tokens.is_fresh(account_factory.build(access_token=""))
    assert not tokens.is_fresh(account_factory.build(access_expires_at=None))


# --- get_vehicle ----------------------------------------------------------------------------


def test_get_vehicle_is_exported_by_the_package():
    assert vehicle_auth.get_vehicle is tokens.get_vehicle
    assert vehicle_auth.call_vehicle is tokens.call_vehicle


def test_a_fresh_token_costs_one_query_and_no_request(
    user, linked_account, smartcar_sandbox, django_assert_max_num_queries
):
    car_id = vehicle_id(linked_account)
    before = smartcar_sandbox.request_count()
    with django_assert_max_num_queries(1):
        car = vehicle_auth.get_vehicle(user, car_id)
    assert smartcar_sandbox.request_count() == before
    assert isinstance(car, smartcar.Vehicle)
    assert car.vehicle_id == car_id
    assert car.access_token == linked_account.access_token
    assert car.attributes().make == "CHEVROLET"


def test_an_expiring_token_is_refreshed_and_both_tokens_saved(
    user, linked_account, smartcar_sandbox, received
):
    smartcar_sandbox.configure(ROTATION_GRACE=0)
    old_access, old_refresh, *_ = stored(expire(linked_account, seconds=120))  # within 5 min
    car = vehicle_auth.get_vehicle(user, vehicle_id(linked_account))
    access, refresh, access_expires, refresh_expires, status = stored(linked_account)
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert car.access_token == access != old_access
    assert refresh != old_refresh
    assert access_expires > timezone.now() + timedelta(minutes=115)
    assert refresh_expires > timezone.now() + timedelta(days=59)
    assert status == SmartcarAccount.Status.ACTIVE
    assert linked_account.last_refreshed_at is not None
    assert car.odometer().distance > 0
    assert [name for name, _ in received] == ["tokens_refreshed"]
    assert received[0][1]["account"].pk == linked_account.pk
    assert received[0][1]["sender"] is SmartcarAccount
    # With no rotation grace the old refresh token is dead: losing the new one would be fatal.
    with pytest.raises(SmartcarException) as refused:
        smartcar_sandbox.auth_client().exchange_refresh_token(old_refresh)
    assert refused.value.type == "invalid_grant"


def test_the_margin_is_a_setting(user, linked_account, smartcar_sandbox, settings):
    settings.VEHICLE_AUTH_REFRESH_MARGIN = 3 * 60 * 60  # more than a new token's 2 hours
    vehicle_auth.get_vehicle(user, vehicle_id(linked_account))
    assert smartcar_sandbox.request_count(**REFRESHES) == 1


def test_an_unknown_vehicle_is_not_linked(user, account_factory, vehicle_factory):
    vehicle_factory(account=account_factory(user=user), smartcar_id="mine")
    with pytest.raises(NotLinked):
        vehicle_auth.get_vehicle(user, "not-mine")


def test_another_users_vehicle_is_not_linked(user, other_user, vehicle_factory, account_factory):
    vehicle_factory(account=account_factory(user=other_user), smartcar_id="theirs")
    with pytest.raises(NotLinked):
        vehicle_auth.get_vehicle(user, "theirs")


def test_a_disconnected_vehicle_is_not_linked(user, account_factory, vehicle_factory):
    account = account_factory(user=user, status=SmartcarAccount.Status.DISCONNECTED)
    vehicle_factory(account=account, smartcar_id="gone")
    with pytest.raises(NotLinked):
        vehicle_auth.get_vehicle(user, "gone")


def test_an_account_needing_reauthorization_raises_at_once(
    user, account_factory, vehicle_factory, smartcar_sandbox
):
    account = account_factory(user=user, status=SmartcarAccount.Status.REAUTH_REQUIRED)
    vehicle_factory(account=account, smartcar_id="car")
    with pytest.raises(ReauthorizationRequired) as raised:
        vehicle_auth.get_vehicle(user, "car")
    assert raised.value.account.pk == account.pk
    assert smartcar_sandbox.request_count() == 0


def test_the_exceptions_are_documented_kinds():
    assert issubclass(NotLinked, VehicleAuthError)
    assert issubclass(NotLinked, LookupError)
    assert issubclass(ReauthorizationRequired, VehicleAuthError)
    assert issubclass(SmartcarUnavailable, SmartcarError)
    assert issubclass(SmartcarError, VehicleAuthError)


# --- invalid_grant ------------------------------------------------------------------------------


def test_invalid_grant_requires_reauthorization_and_is_not_retried(
    user, user_client, linked_account, smartcar_sandbox, received
):
    smartcar_sandbox.revoke_tokens()
    before = stored(expire(linked_account))
    car_id = vehicle_id(linked_account)
    with pytest.raises(ReauthorizationRequired):
        vehicle_auth.get_vehicle(user, car_id)
    linked_account.refresh_from_db()
    assert linked_account.status == SmartcarAccount.Status.REAUTH_REQUIRED
    assert linked_account.last_error_code == "invalid_grant"
    assert linked_account.last_error == "Invalid or expired refresh token."
    assert stored(linked_account)[:4] == before[:4]
    assert received == [
        (
            "reauthorization_required",
            {
                "signal": signals.reauthorization_required,
                "sender": SmartcarAccount,
                "account": received[0][1]["account"],
                "error_code": "invalid_grant",
            },
        )
    ]
    assert received[0][1]["account"].pk == linked_account.pk
    with pytest.raises(ReauthorizationRequired):
        vehicle_auth.get_vehicle(user, car_id)
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    page = user_client.get("/vehicles/").content.decode()
    assert "Reconnect" in page


def test_relinking_restores_an_account_needing_reauthorization(
    user, user_client, linked_account, smartcar_sandbox
):
    smartcar_sandbox.revoke_tokens()
    with pytest.raises(ReauthorizationRequired):
        vehicle_auth.get_vehicle(user, vehicle_id(expire(linked_account)))
    redirect = user_client.get("/vehicles/login/")["Location"]
    callback = smartcar_sandbox.connect(redirect, email="owner@example.com", make="CHEVROLET")
    user_client.get(callback.removeprefix(smartcar_sandbox.live_server_url))
    linked_account.refresh_from_db()
    assert linked_account.status == SmartcarAccount.Status.ACTIVE
    assert vehicle_auth.get_vehicle(user, vehicle_id(linked_account)).attributes().year


# --- transient failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"},
        {"status": 200, "body": "not json", "content_type": "text/plain"},
    ],
    ids=["500", "502-html", "200-garbage"],
)
def test_a_failed_refresh_leaves_the_tokens_as_they_were(
    user, linked_account, smartcar_sandbox, received, fault
):
    before = stored(expire(linked_account))
    car_id = vehicle_id(linked_account)
    smartcar_sandbox.inject("token", times=1, **fault)
    with pytest.raises(SmartcarError) as raised:
        vehicle_auth.get_vehicle(user, car_id)
    assert stored(linked_account) == before
    assert linked_account.last_error_code == raised.value.code
    assert linked_account.refresh_not_before is None  # no Retry-After: try again at once
    assert received == []
    # Nothing was lost: the next call refreshes with the same refresh token.
    car = vehicle_auth.get_vehicle(user, car_id)
    assert car.attributes().model == "Volt"
    assert smartcar_sandbox.request_count(**REFRESHES) == 2
    assert stored(linked_account)[1] != before[1]


def test_a_server_error_is_smartcar_unavailable(user, linked_account, smartcar_sandbox):
    smartcar_sandbox.inject("token", status=503, times=1)
    with pytest.raises(SmartcarUnavailable) as raised:
        vehicle_auth.get_vehicle(user, vehicle_id(expire(linked_account)))
    assert raised.value.status == 503


def test_a_hanging_refresh_is_given_up_on_in_time(user, linked_account, smartcar_sandbox, settings):
    settings.VEHICLE_AUTH_REQUEST_TIMEOUT = 0.5
    before = stored(expire(linked_account))
    car_id = vehicle_id(linked_account)
    smartcar_sandbox.inject("token", hang=30)
    started = time.monotonic()
    with pytest.raises(SmartcarUnavailable) as raised:
        vehicle_auth.get_vehicle(user, car_id)
    assert time.monotonic() - started < 5
    assert raised.value.code == "timeout"
    assert stored(linked_account) == before
    smartcar_sandbox.clear_faults()
    assert vehicle_auth.get_vehicle(user, car_id).access_token != before[0]


def _rate_limit_body() -> dict:
    return {
        "type": "RATE_LIMIT",
        "code": "SMARTCAR_API",
        "description": "You have reached the throttling rate limit for this application.",
        "docURL": "https://smartcar.com/docs/errors/api-errors/rate-limit-errors#smartcar-api",
        "statusCode": 429,
        "requestId": None,
        "resolution": {"type": "RETRY_LATER"},
    }


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        ({"body": _rate_limit_body()}, 120),
        # An OAuth-style body: the SDK drops the header, so the default back-off applies.
        ({}, tokens.RATE_LIMIT_BACKOFF),
    ],
    ids=["retry-after", "no-readable-retry-after"],
)
def test_a_rate_limited_refresh_waits_as_told(user, linked_account, smartcar_sandbox, fault, wait):
    before = stored(expire(linked_account))
    car_id = vehicle_id(linked_account)
    smartcar_sandbox.inject("token", status=429, retry_after=120, times=1, **fault)
    with pytest.raises(SmartcarUnavailable) as raised:
        vehicle_auth.get_vehicle(user, car_id)
    assert raised.value.status == 429
    assert stored(linked_account) == before
    not_before = linked_account.refresh_not_before
    assert timezone.now() + timedelta(seconds=wait - 10) < not_before
    assert not_before <= timezone.now() + timedelta(seconds=wait)
    # Until then nobody asks Smartcar again.
    with pytest.raises(SmartcarUnavailable) as waiting:
        vehicle_auth.get_vehicle(user, car_id)
    assert waiting.value.code == "retry_later"
    assert wait - 10 < waiting.value.retry_after <= wait + 1
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    # Once the wait is over the refresh goes ahead and clears it.
    SmartcarAccount.objects.filter(pk=linked_account.pk).update(
        refresh_not_before=timezone.now() - timedelta(seconds=1)
    )
    assert vehicle_auth.get_vehicle(user, car_id).access_token != before[0]
    linked_account.refresh_from_db()
    assert linked_account.refresh_not_before is None
    assert linked_account.last_error_code == ""


# --- call_vehicle -----------------------------------------------------------------------------


def test_a_401_on_a_fresh_token_refreshes_once_and_retries_once(
    user, linked_account, smartcar_sandbox
):
    smartcar_sandbox.expire_access_tokens()  # Smartcar disagrees with our expiry (clock skew)
    old_access = linked_account.access_token
    distance = vehicle_auth.call_vehicle(
        user, vehicle_id(linked_account), lambda car: car.odometer().distance
    )
    assert distance > 0
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert smartcar_sandbox.request_count("odometer", status=401) == 1
    assert smartcar_sandbox.request_count("odometer", status=200) == 1
    assert stored(linked_account)[0] != old_access


def test_a_second_401_is_raised_after_one_refresh(user, linked_account, smartcar_sandbox):
    smartcar_sandbox.inject("odometer", status=401)
    with pytest.raises(SmartcarException) as raised:
        vehicle_auth.call_vehicle(user, vehicle_id(linked_account), lambda car: car.odometer())
    assert raised.value.type == "AUTHENTICATION"
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert smartcar_sandbox.request_count("odometer") == 2


def test_other_errors_are_neither_refreshed_nor_retried(user, linked_account, smartcar_sandbox):
    smartcar_sandbox.inject("odometer", status=409, times=1)
    with pytest.raises(SmartcarException) as raised:
        vehicle_auth.call_vehicle(user, vehicle_id(linked_account), lambda car: car.odometer())
    assert raised.value.type == "VEHICLE_STATE"
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 0
    assert smartcar_sandbox.request_count("odometer") == 1


def test_a_401_with_a_revoked_grant_requires_reauthorization(
    user, linked_account, smartcar_sandbox
):
    smartcar_sandbox.revoke_tokens()
    with pytest.raises(ReauthorizationRequired):
        vehicle_auth.call_vehicle(user, vehicle_id(linked_account), lambda car: car.odometer())
    assert stored(linked_account)[4] == SmartcarAccount.Status.REAUTH_REQUIRED
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert smartcar_sandbox.request_count("odometer") == 1


# --- refresh_if_expiring / refresh_if_due -----------------------------------------------------


def test_a_stale_token_is_refreshed_only_if_still_current(linked_account, smartcar_sandbox):
    old_access = linked_account.access_token
    first = tokens.refresh_if_expiring(linked_account, stale_access_token=old_access)
    second = tokens.refresh_if_expiring(linked_account, stale_access_token=old_access)
    assert first.access_token == second.access_token != old_access
    assert smartcar_sandbox.request_count(**REFRESHES) == 1


def test_refresh_if_due_keeps_an_old_refresh_token_alive(linked_account, smartcar_sandbox):
    in_15_days = timezone.now() + timedelta(days=15)
    young = tokens.refresh_if_due(
        linked_account.pk, margin=timedelta(minutes=10), refresh_expiring_before=in_15_days
    )
    assert young.outcome == tokens.RefreshOutcome.NOT_DUE
    # As if issued 50 days ago: it dies in 10 days.
    linked_account.refresh_expires_at = timezone.now() + timedelta(days=10)
    linked_account.save(update_fields=["refresh_expires_at"])
    result = tokens.refresh_if_due(
        linked_account.pk, margin=timedelta(minutes=10), refresh_expiring_before=in_15_days
    )
    assert result == tokens.RefreshResult(tokens.RefreshOutcome.REFRESHED)
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert stored(linked_account)[3] > timezone.now() + timedelta(days=59)


def test_refresh_if_due_reports_failures_instead_of_raising(linked_account, smartcar_sandbox):
    expire(linked_account)
    smartcar_sandbox.inject("token", status=500, times=1)
    failed = tokens.refresh_if_due(linked_account.pk, margin=timedelta(minutes=10))
    assert failed.outcome == tokens.RefreshOutcome.FAILED
    assert isinstance(failed.error, SmartcarUnavailable)
    smartcar_sandbox.revoke_tokens()
    refused = tokens.refresh_if_due(linked_account.pk, margin=timedelta(minutes=10))
    assert refused.outcome == tokens.RefreshOutcome.REAUTH_REQUIRED
    again = tokens.refresh_if_due(linked_account.pk, margin=timedelta(minutes=10))
    assert again.outcome == tokens.RefreshOutcome.INACTIVE
    assert tokens.refresh_if_due(0, margin=timedelta(0)).outcome == tokens.RefreshOutcome.INACTIVE
    assert smartcar_sandbox.request_count(**REFRESHES) == 2


def test_an_undecryptable_refresh_token_is_never_sent(
    user, linked_account, smartcar_sandbox, settings
):
    car_id = vehicle_id(expire(linked_account))
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # key "lost"
    with pytest.raises(EncryptionKeyError, match="cannot be decrypted"):
        vehicle_auth.get_vehicle(user, car_id)
    result = tokens.refresh_if_due(linked_account.pk, margin=timedelta(minutes=10))
    assert result.outcome == tokens.RefreshOutcome.FAILED
    assert isinstance(result.error, EncryptionKeyError)
    assert smartcar_sandbox.request_count(**REFRESHES) == 0


def test_refreshing_a_deleted_account_is_not_linked(account_factory):
    account = account_factory()
    SmartcarAccount.objects.filter(pk=account.pk).delete()
    with pytest.raises(NotLinked):
        tokens.refresh_if_expiring(account)
