"""Fixtures shared by the suite: factories as fixtures, and the sandbox on a live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tests.factories import (
    AuthorizationAttemptFactory,
    SmartcarAccountFactory,
    UserFactory,
    VehicleFactory,
)

pytest_plugins = ["vehicle_auth.sandbox.pytest_plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip tests marked `postgresql` unless the suite runs on PostgreSQL."""
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason=(
            f"needs PostgreSQL (row locks shared across processes), not {connection.vendor}: "
            "run with DATABASE_URL=postgres://..."
        )
    )
    for item in items:
        if item.get_closest_marker("postgresql"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_caches() -> None:
    """Every test starts with empty caches: rate-limit counters never carry over."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()


@pytest.fixture
def user_factory() -> type[UserFactory]:
    return UserFactory


@pytest.fixture
def account_factory() -> type[SmartcarAccountFactory]:
    return SmartcarAccountFactory


@pytest.fixture
def vehicle_factory() -> type[VehicleFactory]:
    return VehicleFactory


@pytest.fixture
def attempt_factory() -> type[AuthorizationAttemptFactory]:
    return AuthorizationAttemptFactory


@pytest.fixture
def user(db: None) -> object:
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db: None) -> object:
    return UserFactory(username="mallory")


@pytest.fixture
def user_client(user: object) -> Client:
    """A test client signed in as `user`."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def other_client(other_user: object) -> Client:
    client = Client()
    client.force_login(other_user)
    return client


def link_sandbox_account(
    user: Any, sandbox: Any, *, email: str = "owner@example.com", make: str = "CHEVROLET"
) -> Any:
    """A SmartcarAccount (+ vehicles) holding real sandbox tokens, as linking would save it.

    Goes through the real SDK (code exchange, /user, /vehicles, attributes) but not through
    the Connect screens or our views, which tests/test_flow.py covers.
    """
    from vehicle_auth import smartcar_client
    from vehicle_auth.models import SmartcarAccount, Vehicle

    linked = smartcar_client.fetch_linked_account(
        sandbox.issue_code(email=email, make=make), with_vin=False
    )
    tokens = linked.tokens
    account = SmartcarAccount.objects.create(
        user=user,
        smartcar_user_id=linked.smartcar_user_id,
        mode="test",
        scopes=["read_vehicle_info", "read_vin", "read_odometer"],
        access_token=tokens.access_token,
        access_expires_at=tokens.access_expires_at,
        refresh_token=tokens.refresh_token,
        refresh_expires_at=tokens.refresh_expires_at,
    )
    Vehicle.objects.bulk_create(
        Vehicle(account=account, smartcar_id=car.smartcar_id, make=car.make, model=car.model)
        for car in linked.vehicles
    )
    return account


@pytest.fixture
def link_account(smartcar_sandbox: Any) -> Callable[..., Any]:
    """`link_account(user, email=..., make=...)`: an account with real sandbox tokens."""
    return lambda user, **kwargs: link_sandbox_account(user, smartcar_sandbox, **kwargs)


@pytest.fixture
def linked_account(user: Any, link_account: Callable[..., Any]) -> Any:
    """`user`'s account, linked through the sandbox, with one vehicle (a Chevrolet Volt)."""
    return link_account(user)
