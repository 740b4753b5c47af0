"""System checks for vehicle_auth's settings. Ids are stable; retired ids stay reserved here."""

from __future__ import annotations

from typing import Any

from django.core import checks

from vehicle_auth import crypto
from vehicle_auth.conf import conf


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
