"""System checks of the sandbox: never serve a fake Smartcar on a production site by mistake."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from vehicle_auth.sandbox import conf


@checks.register(checks.Tags.security)
def check_sandbox_not_in_production(**kwargs: Any) -> list[checks.CheckMessage]:
    if conf.enabled() and not settings.DEBUG and not conf.get("ALLOW_WITHOUT_DEBUG"):
        return [
            checks.Error(
                "The Smartcar sandbox is enabled while DEBUG is off.",
                hint=(
                    "Set SMARTCAR_SANDBOX_ENABLED = False in production, or "
                    "SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG = True if you really mean to serve it."
                ),
                id="vehicle_auth_sandbox.E001",
            )
        ]
    return []
