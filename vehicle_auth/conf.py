"""Typed access to vehicle_auth's settings, read when accessed so `override_settings` works."""

from __future__ import annotations

from django.conf import settings

DEFAULT_SCOPES = ("read_vehicle_info", "read_vin")


class Settings:
    """Each property reads its Django setting at access time; nothing is cached."""

    @property
    def SMARTCAR_CLIENT_ID(self) -> str:
        return getattr(settings, "SMARTCAR_CLIENT_ID", "") or ""

    @property
    def SMARTCAR_CLIENT_SECRET(self) -> str:
        return getattr(settings, "SMARTCAR_CLIENT_SECRET", "") or ""

    @property
    def SMARTCAR_REDIRECT_URI(self) -> str:
        return getattr(settings, "SMARTCAR_REDIRECT_URI", "") or ""

    @property
    def SMARTCAR_MODE(self) -> str:
        return getattr(settings, "SMARTCAR_MODE", "test") or "test"

    @property
    def SMARTCAR_SCOPES(self) -> list[str]:
        return list(getattr(settings, "SMARTCAR_SCOPES", DEFAULT_SCOPES))

    # Empty means the SDK's own default (Smartcar's production origins).
    @property
    def SMARTCAR_CONNECT_ORIGIN(self) -> str:
        return getattr(settings, "SMARTCAR_CONNECT_ORIGIN", "") or ""

    @property
    def SMARTCAR_AUTH_ORIGIN(self) -> str:
        return getattr(settings, "SMARTCAR_AUTH_ORIGIN", "") or ""

    @property
    def SMARTCAR_API_ORIGIN(self) -> str:
        return getattr(settings, "SMARTCAR_API_ORIGIN", "") or ""

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        return list(getattr(settings, "VEHICLE_AUTH_ENCRYPTION_KEYS", []))

    @property
    def REQUEST_TIMEOUT(self) -> float:
        """Seconds a site user's request may wait on Smartcar (the SDK's own is 310 s)."""
        return float(getattr(settings, "VEHICLE_AUTH_REQUEST_TIMEOUT", 15))

    @property
    def MAX_PARALLEL_REQUESTS(self) -> int:
        """How many Smartcar calls one request may have in flight at once."""
        return int(getattr(settings, "VEHICLE_AUTH_MAX_PARALLEL_REQUESTS", 10))

    @property
    def ATTEMPT_LIFETIME(self) -> int:
        """Seconds a `state` stays valid (Smartcar's codes live 10 minutes too)."""
        return int(getattr(settings, "VEHICLE_AUTH_ATTEMPT_LIFETIME", 600))

    @property
    def REFRESH_MARGIN(self) -> int:
        """Seconds an access token must still be valid for; refresh sooner than that."""
        return int(getattr(settings, "VEHICLE_AUTH_REFRESH_MARGIN", 300))

    @property
    def CONNECT_MAKE(self) -> str:
        """Skip Connect's brand list for this make (e.g. "TESLA"); empty shows the list."""
        return getattr(settings, "VEHICLE_AUTH_CONNECT_MAKE", "") or ""

    @property
    def CONNECT_SINGLE_SELECT(self) -> bool:
        return bool(getattr(settings, "VEHICLE_AUTH_CONNECT_SINGLE_SELECT", False))

    @property
    def CONNECT_FORCE_PROMPT(self) -> bool:
        return bool(getattr(settings, "VEHICLE_AUTH_CONNECT_FORCE_PROMPT", False))

    @property
    def BASE_TEMPLATE(self) -> str:
        """The template vehicle_auth's pages extend; point it at your site's own base."""
        return getattr(settings, "VEHICLE_AUTH_BASE_TEMPLATE", "vehicle_auth/base.html")

    @property
    def UNIT_SYSTEM(self) -> str:
        return getattr(settings, "VEHICLE_AUTH_UNIT_SYSTEM", "metric")


conf = Settings()
