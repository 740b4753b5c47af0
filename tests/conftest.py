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
    link_sandbox_account,
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


@pytest.fixture
def link_account(smartcar_sandbox: Any) -> Callable[..., Any]:
    """`link_account(user, email=..., make=...)`: an account with real sandbox tokens."""
    return lambda user, **kwargs: link_sandbox_account(user, smartcar_sandbox, **kwargs)


@pytest.fixture
def linked_account(user: Any, link_account: Callable[..., Any]) -> Any:
    """`user`'s account, linked through the sandbox, with one vehicle (a Chevrolet Volt)."""
    return link_account(user)
