"""Exceptions of vehicle_auth: one base class, and Django's own where Django should answer."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class VehicleAuthError(Exception):
    """Base class of every error vehicle_auth raises."""


class EncryptionKeyError(VehicleAuthError, ImproperlyConfigured):
    """The token encryption keys are missing, malformed, or cannot decrypt a stored token."""


class InvalidState(VehicleAuthError, SuspiciousOperation):
    """A callback whose `state` is missing, unknown, expired, used, or not this visitor's.

    Django answers a SuspiciousOperation with 400; the callback view renders its own page.
    """


class SmartcarError(VehicleAuthError):
    """Smartcar answered with an error, an unexpected body, or not in time.

    `code` is a short machine-readable reason (Smartcar's error type/code or ours such as
    "timeout"); `description` is safe to store and to show to staff.
    """

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after
        super().__init__(f"{code}: {description}" if description else code)


class SmartcarUnavailable(SmartcarError):
    """Smartcar could not be reached, timed out, or failed on its side (5xx, 429): try later."""


class NotLinked(VehicleAuthError, LookupError):
    """The user has no active connected account holding that vehicle."""


class ReauthorizationRequired(VehicleAuthError):
    """Smartcar no longer accepts the account's refresh token: the user must link again."""

    def __init__(self, account: object, message: str = "") -> None:
        self.account = account
        super().__init__(message or "The owner must connect this vehicle again.")
