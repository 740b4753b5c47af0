"""The sandbox's system check: never serve a fake Smartcar with DEBUG off by mistake."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from vehicle_auth.sandbox.checks import check_sandbox_not_in_production


def ids(messages) -> list[str]:  # type: ignore[no-untyped-def]
    return [message.id for message in messages]


@pytest.fixture
def production(settings):  # type: ignore[no-untyped-def]
    """DEBUG off, sandbox on, not forced: the setting E001 exists for."""
    settings.DEBUG = False
    settings.SMARTCAR_SANDBOX_ENABLED = True
    settings.SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG = False
    return settings


def test_e001_sandbox_enabled_without_debug(production) -> None:
    messages = check_sandbox_not_in_production()
    assert ids(messages) == ["vehicle_auth_sandbox.E001"]
    assert "SMARTCAR_SANDBOX_ENABLED = False" in messages[0].hint
    assert "SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG = True" in messages[0].hint


def test_e001_absent_setting_means_not_forced(production) -> None:
    del production.SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG
    assert ids(check_sandbox_not_in_production()) == ["vehicle_auth_sandbox.E001"]


def test_no_error_with_debug_on(production) -> None:
    production.DEBUG = True
    assert check_sandbox_not_in_production() == []


def test_no_error_when_explicitly_allowed(production) -> None:
    production.SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG = True
    assert check_sandbox_not_in_production() == []


@pytest.mark.parametrize("enabled", [False, None, 0])
def test_no_error_when_disabled(production, enabled) -> None:
    production.SMARTCAR_SANDBOX_ENABLED = enabled
    assert check_sandbox_not_in_production() == []


def test_absent_enabled_setting_means_disabled(production) -> None:
    del production.SMARTCAR_SANDBOX_ENABLED
    assert check_sandbox_not_in_production() == []


def test_manage_py_check_fails_on_e001(production) -> None:
    with pytest.raises(SystemCheckError, match=r"vehicle_auth_sandbox\.E001"):
        call_command("check")


def test_the_check_is_registered_as_a_security_check(production) -> None:
    with pytest.raises(SystemCheckError, match=r"vehicle_auth_sandbox\.E001"):
        call_command("check", tags=["security"])
