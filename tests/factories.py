"""factory-boy factories for the suite's data."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("password")


class SmartcarAccountFactory(factory.django.DjangoModelFactory):
    """An account whose tokens are made up: fine wherever Smartcar is not called."""

    class Meta:
        model = SmartcarAccount

    user = factory.SubFactory(UserFactory)
    smartcar_user_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    mode = "test"
    scopes = factory.LazyFunction(lambda: ["read_vehicle_info", "read_vin"])
    access_token = factory.LazyFunction(lambda: str(uuid.uuid4()))
    refresh_token = factory.LazyFunction(lambda: str(uuid.uuid4()))
    access_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    refresh_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=60))


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    account = factory.SubFactory(SmartcarAccountFactory)
    smartcar_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    make = "TESLA"
    model = "Model S"
    year = 2020
    vin = factory.Sequence(lambda n: f"5YJSA1E2{n:09d}")


class AuthorizationAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuthorizationAttempt

    user = factory.SubFactory(UserFactory)
    state_hash = factory.Sequence(lambda n: f"{n:064x}")
    session_hash = factory.Sequence(lambda n: f"{n + 10**6:064x}")
    mode = "test"
    scopes = factory.LazyFunction(lambda: ["read_vehicle_info"])
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=10))


def link_sandbox_account(
    user: Any, sandbox: Any, *, email: str = "owner@example.com", make: str = "CHEVROLET"
) -> Any:
    """A SmartcarAccount (+ vehicles) holding real sandbox tokens, saved as linking saves it.

    Goes through the real SDK (code exchange, /user, /vehicles, attributes, VIN) and
    `flow.save_linked_account`, but not through the Connect screens or our views, which
    tests/test_flow.py covers.
    """
    from vehicle_auth import flow, smartcar_client

    scopes = ["read_vehicle_info", "read_vin", "read_odometer"]
    linked = smartcar_client.fetch_linked_account(
        sandbox.issue_code(email=email, make=make, scopes=scopes), with_vin=True
    )
    account, _ = flow.save_linked_account(user, linked, mode="test", scopes=scopes)
    return account


def create_bulk_accounts(count: int, makes: tuple[str, ...] = ("TESLA", "KIA", "BMW")) -> None:
    """`count` users, each with an account (statuses, expiries and errors varied) and one
    vehicle per make: a large admin changelist, written in a few statements."""
    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"bulk{n:04d}", email=f"bulk{n:04d}@example.com", password="!")
        for n in range(count)
    )
    now = timezone.now()
    statuses = SmartcarAccount.Status.values
    accounts = SmartcarAccount.objects.bulk_create(
        SmartcarAccount(
            user=user,
            smartcar_user_id=str(uuid.uuid4()),
            mode="test",
            access_token=f"access-{n}",
            refresh_token=f"refresh-{n}",
            access_expires_at=now + timedelta(hours=2),
            refresh_expires_at=now + timedelta(days=n % 60),
            status=statuses[n % len(statuses)],
            last_error_code="network_error" if n % 7 == 0 else "",
        )
        for n, user in enumerate(users)
    )
    Vehicle.objects.bulk_create(
        Vehicle(
            account=account,
            smartcar_id=str(uuid.uuid4()),
            make=make,
            model="Model",
            year=2020,
            vin=f"VIN{account.pk:06d}{index}",
        )
        for account in accounts
        for index, make in enumerate(makes)
    )
