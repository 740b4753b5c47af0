"""Each system check of vehicle_auth, by id, and `manage.py check` failing on a bad setting."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from vehicle_auth import checks


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_good_settings_pass_every_check() -> None:
    assert checks.check_encryption_keys() == []
    assert checks.check_credentials() == []
    assert checks.check_redirect_uri() == []
    assert checks.check_numbers() == []


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"]])
def test_e001_encryption_keys(settings, keys) -> None:
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = keys
    assert ids(checks.check_encryption_keys()) == ["vehicle_auth.E001"]


@pytest.mark.parametrize(
    "name", ["SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET", "SMARTCAR_REDIRECT_URI"]
)
def test_e002_missing_credentials(settings, name) -> None:
    setattr(settings, name, "")
    messages = checks.check_credentials()
    assert ids(messages) == ["vehicle_auth.E002"]
    assert name in messages[0].msg


@pytest.mark.parametrize(
    "uri",
    [
        "http://testserver/vehicles/",
        "http://testserver/nowhere/",
        "ftp://testserver/vehicles/callback/",
        "/vehicles/callback/",
    ],
)
def test_e003_redirect_uri_must_reach_the_callback(settings, uri) -> None:
    settings.SMARTCAR_REDIRECT_URI = uri
    assert ids(checks.check_redirect_uri()) == ["vehicle_auth.E003"]


def test_e004_unknown_mode(settings) -> None:
    settings.SMARTCAR_MODE = "production"
    assert ids(checks.check_mode()) == ["vehicle_auth.E004"]


@pytest.mark.parametrize(
    ("mode", "debug", "expected"),
    [
        ("test", False, ["vehicle_auth.W001"]),
        ("simulated", False, ["vehicle_auth.W001"]),
        ("test", True, []),
        ("live", False, []),
    ],
)
def test_w001_test_mode_without_debug(settings, mode, debug, expected) -> None:
    settings.SMARTCAR_MODE = mode
    settings.DEBUG = debug
    assert ids(checks.check_mode()) == expected


@pytest.mark.parametrize(
    "name",
    [
        "VEHICLE_AUTH_REQUEST_TIMEOUT",
        "VEHICLE_AUTH_MAX_PARALLEL_REQUESTS",
        "VEHICLE_AUTH_ATTEMPT_LIFETIME",
    ],
)
def test_e005_numbers_must_be_positive(settings, name) -> None:
    setattr(settings, name, 0)
    assert ids(checks.check_numbers()) == ["vehicle_auth.E005"]


def test_manage_py_check_fails_on_a_bad_setting(settings) -> None:
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = []
    with pytest.raises(SystemCheckError, match=r"vehicle_auth\.E001"):
        call_command("check")
