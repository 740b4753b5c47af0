"""System checks for vehicle_auth's settings. Ids are stable; retired ids stay reserved here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.urls import Resolver404, resolve

from vehicle_auth import crypto
from vehicle_auth.conf import conf

CALLBACK_VIEW = "vehicle_auth:callback"
MODES = ("live", "test", "simulated")


@checks.register()
def check_encryption_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    problem = crypto.validate_keys(conf.ENCRYPTION_KEYS)
    if problem is None:
        return []
    return [
        checks.Error(
            f"VEHICLE_AUTH_ENCRYPTION_KEYS cannot encrypt tokens: {problem}.",
            hint=(
                "Set VEHICLE_AUTH_ENCRYPTION_KEYS to a list of Fernet keys, newest first; "
                "generate one with Fernet.generate_key()."
            ),
            id="vehicle_auth.E001",
        )
    ]


@checks.register()
def check_credentials(**kwargs: Any) -> list[checks.CheckMessage]:
    missing = [
        name
        for name, value in (
            ("SMARTCAR_CLIENT_ID", conf.SMARTCAR_CLIENT_ID),
            ("SMARTCAR_CLIENT_SECRET", conf.SMARTCAR_CLIENT_SECRET),
            ("SMARTCAR_REDIRECT_URI", conf.SMARTCAR_REDIRECT_URI),
        )
        if not value
    ]
    if not missing:
        return []
    return [
        checks.Error(
            f"Smartcar credentials are missing: {', '.join(missing)}.",
            hint="Copy them from the Smartcar dashboard into these settings.",
            id="vehicle_auth.E002",
        )
    ]


@checks.register(checks.Tags.urls)
def check_redirect_uri(**kwargs: Any) -> list[checks.CheckMessage]:
    uri = conf.SMARTCAR_REDIRECT_URI
    if not uri:
        return []  # E002 reports it
    parts = urlsplit(uri)
    try:
        match = resolve(parts.path)
    except Resolver404:
        match = None
    if parts.scheme in {"http", "https"} and match and match.view_name == CALLBACK_VIEW:
        return []
    return [
        checks.Error(
            f"SMARTCAR_REDIRECT_URI {uri!r} does not lead to vehicle_auth's callback view.",
            hint=(
                "Use the absolute URL of reverse('vehicle_auth:callback'), e.g. "
                "https://example.com/vehicles/callback/, and register it with Smartcar."
            ),
            id="vehicle_auth.E003",
        )
    ]


@checks.register()
def check_mode(**kwargs: Any) -> list[checks.CheckMessage]:
    mode = conf.SMARTCAR_MODE
    if mode not in MODES:
        return [
            checks.Error(
                f"SMARTCAR_MODE is {mode!r}.",
                hint="Use 'live' for real cars, 'test' or 'simulated' while developing.",
                id="vehicle_auth.E004",
            )
        ]
    if mode != "live" and not settings.DEBUG:
        return [
            checks.Warning(
                f"SMARTCAR_MODE is {mode!r} while DEBUG is off: users can only link test cars.",
                hint="Set SMARTCAR_MODE = 'live' in production.",
                id="vehicle_auth.W001",
            )
        ]
    return []


@checks.register()
def check_numbers(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for name, value in (
        ("VEHICLE_AUTH_REQUEST_TIMEOUT", conf.REQUEST_TIMEOUT),
        ("VEHICLE_AUTH_MAX_PARALLEL_REQUESTS", conf.MAX_PARALLEL_REQUESTS),
        ("VEHICLE_AUTH_ATTEMPT_LIFETIME", conf.ATTEMPT_LIFETIME),
    ):
        if value <= 0:
            errors.append(
                checks.Error(
                    f"{name} must be positive, not {value!r}.",
                    hint="Remove the setting to use the default.",
                    id="vehicle_auth.E005",
                )
            )
    return errors
