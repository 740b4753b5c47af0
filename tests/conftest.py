"""Fixtures shared by the suite: factories as fixtures, and the sandbox on a live server."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import (
    AuthorizationAttemptFactory,
    SmartcarAccountFactory,
    UserFactory,
    VehicleFactory,
)

pytest_plugins = ["vehicle_auth.sandbox.pytest_plugin"]


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
