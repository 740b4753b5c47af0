"""Typed access to the sandbox's settings, read when accessed (so override_settings works).

A value stored at run time through `vehicle_auth.sandbox.control.configure()` wins over the
Django setting, so tests and benchmarks can change a running sandbox, even one served by
another process.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "ENABLED": False,
    # Serve the sandbox even with DEBUG off (a shared staging site, a load test).
    "ALLOW_WITHOUT_DEBUG": False,
    # Applications registered with the sandbox: client_id, client_secret, redirect_uris, name.
    "APPLICATIONS": [],
    "ACCESS_TOKEN_LIFETIME": 2 * 60 * 60,
    "REFRESH_TOKEN_LIFETIME": 60 * 24 * 60 * 60,
    "CODE_LIFETIME": 10 * 60,
    # How long a rotated refresh token keeps working (Smartcar: about a minute).
    "ROTATION_GRACE": 60,
    # Faults applied to every request of an endpoint: {"token": {"latency": 0.1}, "*": {...}}
    "FAULTS": {},
    # The longest a "hang" fault holds a request, so a test run always ends.
    "MAX_HANG": 60,
}

RUNTIME_KEYS = (
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "CODE_LIFETIME",
    "ROTATION_GRACE",
)


def get(name: str) -> Any:
    """The value of `SMARTCAR_SANDBOX_<name>`: runtime override, Django setting or default."""
    if name in RUNTIME_KEYS:
        from vehicle_auth.sandbox.models import RuntimeSetting

        row = RuntimeSetting.objects.filter(key=name).first()
        if row is not None:
            return row.value
    return getattr(settings, f"SMARTCAR_SANDBOX_{name}", DEFAULTS[name])


def enabled() -> bool:
    return bool(get("ENABLED"))
