"""Smartcar's error answers: OAuth JSON for the token endpoint, v2.0 bodies for the vehicle API.

Views raise `OAuthError` or `ApiError`; `faults.sandbox_view` turns them into responses, so
every error the sandbox sends, injected or real, has the shape the SDKs parse (SMARTCAR.md §3,
§4). Descriptions and doc URLs follow Smartcar's published error reference.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from django.http import JsonResponse

DOCS = "https://smartcar.com/docs/errors/api-errors"

RETRY_MESSAGE = (
    "Your car is temporarily unable to connect to this app. "
    "Please be patient while we're working to resolve this issue."
)


@dataclass(frozen=True)
class ErrorKind:
    """One entry of Smartcar's v2.0 error reference."""

    status: int
    description: str
    doc_page: str
    resolution: str | None = None
    suggested_user_message: str | None = None


# (type, code) -> what Smartcar answers. Codes are None where Smartcar sends `"code": null`.
V2_ERRORS: dict[tuple[str, str | None], ErrorKind] = {
    ("AUTHENTICATION", None): ErrorKind(
        401,
        "The authorization header is missing or malformed, or it contains invalid or expired "
        "authentication credentials. Please check for missing parameters, spelling and casing "
        "mistakes, and other syntax issues.",
        "authentication-errors",
    ),
    ("PERMISSION", None): ErrorKind(
        403,
        "Your application has insufficient permissions to access the requested resource. "
        "Please prompt the user to re-authenticate using Smartcar Connect.",
        "permission-errors",
        resolution="REAUTHENTICATE",
    ),
    ("VALIDATION", None): ErrorKind(
        400,
        "Request invalid or malformed. Please check for missing parameters, spelling and "
        "casing mistakes, and other syntax issues.",
        "validation-errors",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("VALIDATION", "PARAMETER"): ErrorKind(
        400,
        "Your request is formatted correctly, but one or more of the provided parameters is "
        "incorrect.",
        "validation-errors",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("RESOURCE_NOT_FOUND", "PATH"): ErrorKind(
        404,
        "The requested resource does not exist. Please check the URL and try again.",
        "resource-errors",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("RESOURCE_NOT_FOUND", "VERSION"): ErrorKind(
        404,
        "The requested resource does not exist. Please check your specified version number "
        "and try again.",
        "resource-errors",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("VEHICLE_STATE", "ASLEEP"): ErrorKind(
        409,
        "The vehicle is in a sleep state and temporarily unable to perform your request. "
        "Please retry your request at a later time.",
        "vehicle-state-errors",
        resolution="RETRY_LATER",
        suggested_user_message="Your car is asleep. Please wake it up and try again.",
    ),
    ("RATE_LIMIT", "SMARTCAR_API"): ErrorKind(
        429,
        "Your application has exceeded its rate limit. Please retry your request in a few minutes.",
        "rate-limit-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("RATE_LIMIT", "VEHICLE"): ErrorKind(
        429,
        "You have reached the throttling rate limit for this vehicle. Please see the "
        "retry-after header for when to retry the request.",
        "rate-limit-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("BILLING", "VEHICLE_REQUEST_LIMIT"): ErrorKind(
        430,
        "You have reached the request limit for this vehicle under your current plan.",
        "billing-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("COMPATIBILITY", "MAKE_NOT_COMPATIBLE"): ErrorKind(
        501,
        "Smartcar is not yet compatible with this vehicle's make in the country you specified.",
        "compatibility-errors",
        suggested_user_message="Your car is not compatible with this app yet.",
    ),
    ("UPSTREAM", "UNKNOWN_ISSUE"): ErrorKind(
        502,
        "Smartcar received an unknown error from an upstream source. Please retry your "
        "request at a later time and contact us if the issue persists.",
        "upstream-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("UPSTREAM", "NO_RESPONSE"): ErrorKind(
        502,
        "One of Smartcar's upstream sources failed to respond. Please retry your request at "
        "a later time.",
        "upstream-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("SERVER", "INTERNAL"): ErrorKind(
        500,
        "An internal Smartcar error has occurred. Our team has been notified and is working "
        "to resolve this issue.",
        "server-errors",
        resolution="RETRY_LATER",
        suggested_user_message=RETRY_MESSAGE,
    ),
    ("CONNECTED_SERVICES_ACCOUNT", "AUTHENTICATION_FAILED"): ErrorKind(
        400,
        "Smartcar was unable to authenticate with the user's connected services account. "
        "Please prompt the user to re-authenticate using Smartcar Connect.",
        "connected-services-account-errors",
        resolution="REAUTHENTICATE",
        suggested_user_message=(
            "Your car got disconnected from this app. Please reconnect it to continue."
        ),
    ),
}

# The code a bare `type` stands for, when a caller gives a type without a code.
DEFAULT_CODES: dict[str, str | None] = {
    "AUTHENTICATION": None,
    "PERMISSION": None,
    "VALIDATION": None,
    "RESOURCE_NOT_FOUND": "PATH",
    "VEHICLE_STATE": "ASLEEP",
    "RATE_LIMIT": "SMARTCAR_API",
    "BILLING": "VEHICLE_REQUEST_LIMIT",
    "COMPATIBILITY": "MAKE_NOT_COMPATIBLE",
    "UPSTREAM": "UNKNOWN_ISSUE",
    "SERVER": "INTERNAL",
    "CONNECTED_SERVICES_ACCOUNT": "AUTHENTICATION_FAILED",
}

# What an injected status without a body answers on the vehicle API.
V2_BY_STATUS: dict[int, tuple[str, str | None]] = {
    400: ("VALIDATION", None),
    401: ("AUTHENTICATION", None),
    403: ("PERMISSION", None),
    404: ("RESOURCE_NOT_FOUND", "PATH"),
    405: ("VALIDATION", None),
    409: ("VEHICLE_STATE", "ASLEEP"),
    429: ("RATE_LIMIT", "VEHICLE"),
    430: ("BILLING", "VEHICLE_REQUEST_LIMIT"),
    500: ("SERVER", "INTERNAL"),
    501: ("COMPATIBILITY", "MAKE_NOT_COMPATIBLE"),
    502: ("UPSTREAM", "UNKNOWN_ISSUE"),
    504: ("UPSTREAM", "NO_RESPONSE"),
}

# What an injected status without a body answers on the token endpoint.
OAUTH_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "The request is missing a parameter or is otherwise malformed."),
    401: ("invalid_client", "Invalid client credentials."),
    429: ("rate_limit_exceeded", "Too many requests. Please retry later."),
}
OAUTH_SERVER_ERROR = ("server_error", "Unexpected server error. Please try again.")


def _kebab(code: str | None) -> str:
    return (code or "null").lower().replace("_", "-")


def v2_body(
    error_type: str,
    code: str | None = None,
    *,
    request_id: str | None,
    status: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A complete v2.0 error body; `status` and `description` default from the reference."""
    kind = V2_ERRORS.get((error_type, code))
    body: dict[str, Any] = {
        "type": error_type,
        "code": code,
        "description": description or (kind.description if kind else "An error occurred."),
        "docURL": f"{DOCS}/{kind.doc_page if kind else ''}#{_kebab(code)}",
        "statusCode": status or (kind.status if kind else 400),
        "requestId": request_id,
        "resolution": {"type": kind.resolution if kind else None},
    }
    if kind and kind.suggested_user_message:
        body["suggestedUserMessage"] = kind.suggested_user_message
    return body


def v2_body_for_status(status: int, request_id: str | None) -> dict[str, Any]:
    """The usual v2.0 body for an HTTP status (unlisted: VALIDATION for 4xx, SERVER for 5xx)."""
    error_type, code = V2_BY_STATUS.get(
        status, ("VALIDATION", None) if status < 500 else ("SERVER", "INTERNAL")
    )
    return v2_body(error_type, code, request_id=request_id, status=status)


def oauth_body_for_status(status: int) -> dict[str, str]:
    """The usual token-endpoint body for an HTTP status."""
    if status in OAUTH_BY_STATUS:
        error, description = OAUTH_BY_STATUS[status]
    elif status >= 500:
        error, description = OAUTH_SERVER_ERROR
    else:
        error, description = OAUTH_BY_STATUS[400]
    return {"error": error, "error_description": description}


class SandboxError(Exception, metaclass=abc.ABCMeta):
    """An error answer; `faults.sandbox_view` renders it."""

    status: int
    headers: dict[str, str]

    @abc.abstractmethod
    def response(self, request_id: str | None) -> JsonResponse:
        """The JSON answer, with `request_id` in v2.0 bodies."""


class OAuthError(SandboxError):
    """An error of the token endpoint: `{"error": ..., "error_description": ...}`."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self, request_id: str | None) -> JsonResponse:
        response = JsonResponse(
            {"error": self.error, "error_description": self.description}, status=self.status
        )
        for name, value in self.headers.items():
            response[name] = value
        return response


class ApiError(SandboxError):
    """A v2.0 API error; the body's statusCode is always the HTTP status."""

    def __init__(
        self,
        error_type: str,
        code: str | None = None,
        *,
        description: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        kind = V2_ERRORS.get((error_type, code))
        self.error_type = error_type
        self.code = code
        self.description = description
        self.status = status or (kind.status if kind else 400)
        self.headers = headers or {}
        super().__init__(f"{error_type}:{code} - {description or ''}")

    def response(self, request_id: str | None) -> JsonResponse:
        body = v2_body(
            self.error_type,
            self.code,
            request_id=request_id,
            status=self.status,
            description=self.description,
        )
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response
