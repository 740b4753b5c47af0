"""Drive a running sandbox from Python: inject faults, change lifetimes, count calls, mint codes.

Everything here goes through the database, so it works on a sandbox served by another thread
(pytest-django's `live_server`) or another process sharing the database (a benchmark server).
Only `wait_until_holding` and `wait_until_idle` need the sandbox in this process.

    from vehicle_auth.sandbox import control

    control.inject("odometer", status=429, retry_after=30, times=1)
    control.inject("token", hang=30)            # released by clear_faults()
    control.configure(ROTATION_GRACE=0)
    code = control.issue_code("my-client", "https://example.com/callback/")
    assert control.request_count("token", detail="refresh_token") == 1
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from vehicle_auth.sandbox import conf, data, grants
from vehicle_auth.sandbox.errors import DEFAULT_CODES, V2_ERRORS, v2_body
from vehicle_auth.sandbox.faults import (
    CONNECT,
    ENDPOINTS,
    TOKEN,
    wait_until_holding,
    wait_until_idle,
)
from vehicle_auth.sandbox.models import Fault, RequestLog, RuntimeSetting, Token

__all__ = [
    "DEFAULT_SCOPES",
    "clear_faults",
    "configure",
    "expire_access_tokens",
    "expire_refresh_tokens",
    "inject",
    "issue_code",
    "request_count",
    "reset",
    "revoke_tokens",
    "wait_until_holding",
    "wait_until_idle",
]

DEFAULT_SCOPES = ("read_vehicle_info", "read_vin", "read_odometer")

# OAuth errors `inject(endpoint="token", error_type=...)` knows: status and description.
OAUTH_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_grant": (400, "Invalid or expired refresh token."),
    "invalid_request": (400, "The request is missing a parameter or is otherwise malformed."),
    "invalid_client": (401, "Invalid client credentials."),
    "server_error": (500, "Unexpected server error. Please try again."),
}


def _error_body(
    endpoint: str, error_type: str, error_code: str | None, status: int | None
) -> tuple[int, str]:
    if endpoint == TOKEN:
        default_status, description = OAUTH_ERRORS.get(error_type, (400, "Sandbox error."))
        body = {"error": error_type, "error_description": error_code or description}
        return status or default_status, json.dumps(body)
    if endpoint in ("*", CONNECT):
        raise ValueError("error_type needs one endpoint: the token endpoint or an API call.")
    code = error_code if error_code is not None else DEFAULT_CODES.get(error_type)
    kind = V2_ERRORS.get((error_type, code))
    status = status or (kind.status if kind else 400)
    # requestId stays null here; each answer fills in its own (faults._with_request_id).
    return status, json.dumps(v2_body(error_type, code, request_id=None, status=status))


def inject(
    endpoint: str,
    *,
    latency: float = 0.0,
    hang: float | None = None,
    status: int | None = None,
    body: Any = None,
    content_type: str = "application/json",
    retry_after: int | None = None,
    times: int | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
) -> Fault:
    """Make the next `times` requests of `endpoint` (None: all of them) misbehave.

    `endpoint` is one of `faults.ENDPOINTS` ("token", "user", "vehicles", "attributes", "vin",
    "permissions", "odometer", "disconnect", ...) or "*" for every endpoint.

    - `latency`: seconds to wait before answering normally (or with the forced status);
    - `hang`: seconds to hold the request without answering (capped by
      SMARTCAR_SANDBOX_MAX_HANG; released early by `clear_faults()`), then 504 or `status`;
    - `status`: the HTTP status to answer, with the endpoint's usual error body (OAuth JSON on
      the token endpoint, a v2.0 body on the API) unless `body` is given; a 2xx or 3xx without
      `body` is the usual answer under that status;
    - `body`: sent verbatim (a dict or list is JSON-encoded; a string may be anything, e.g.
      non-JSON to test malformed answers); with no `status` it is a 200;
    - `content_type`: of `body`;
    - `retry_after`: seconds, sent as a `Retry-After` header;
    - `error_type` / `error_code`: shorthand for a complete error body, e.g.
      `error_type="VEHICLE_STATE", error_code="ASLEEP"` or, on "token",
      `error_type="invalid_grant"` (then `error_code` is the description); the status defaults
      to the one Smartcar uses for that error.

    Faults on "connect" are read by the Connect screens (`connect.py`): there `body` is the
    error Connect sends back to the redirect URI (`server_error`, or a query such as
    `error=vehicle_incompatible&make=TESLA`).
    """
    if endpoint != "*" and endpoint not in ENDPOINTS:
        raise ValueError(f"Unknown endpoint {endpoint!r}; use '*' or one of {ENDPOINTS}.")
    if latency < 0 or (hang is not None and hang <= 0):
        raise ValueError("latency must be >= 0 and hang > 0 seconds.")
    if status is not None and not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code, not {status!r}.")
    if times is not None and times < 1:
        raise ValueError("times must be at least 1 (None: every request).")
    if retry_after is not None and retry_after < 0:
        raise ValueError("retry_after must be >= 0 seconds.")
    if error_type is not None:
        if body is not None:
            raise ValueError("Give either body or error_type, not both.")
        status, body = _error_body(endpoint, error_type, error_code, status)
    elif isinstance(body, dict | list):
        body = json.dumps(body)
    elif isinstance(body, bytes):
        body = body.decode()
    return Fault.objects.create(
        endpoint=endpoint,
        latency=latency,
        hang=hang,
        status=status,
        body=body,
        content_type=content_type,
        retry_after=retry_after,
        remaining=times,
    )


def clear_faults() -> None:
    """Remove every injected fault; requests held by a hang fault are answered at once."""
    Fault.objects.all().delete()


def configure(**overrides: float | None) -> None:
    """Change token lifetimes or the rotation grace of the running sandbox (seconds).

    Keys (case-insensitive): ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME, CODE_LIFETIME,
    ROTATION_GRACE. None removes an override (back to the setting or default). Lifetimes
    apply to codes and tokens issued afterwards.
    """
    for key, value in overrides.items():
        name = key.upper()
        if name not in conf.RUNTIME_KEYS:
            raise TypeError(f"Unknown sandbox setting {key!r}; use one of {conf.RUNTIME_KEYS}.")
        if value is None:
            RuntimeSetting.objects.filter(key=name).delete()
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name} must be a number of seconds, not {value!r}.")
        RuntimeSetting.objects.update_or_create(key=name, defaults={"value": value})


def reset() -> None:
    """Back to a quiet sandbox: no faults, no runtime settings, an empty request log."""
    Fault.objects.all().delete()
    RuntimeSetting.objects.all().delete()
    RequestLog.objects.all().delete()


def request_count(
    endpoint: str | None = None, *, detail: str | None = None, status: int | None = None
) -> int:
    """How many requests the sandbox answered (and logged) so far.

    `detail` is the grant_type on the token endpoint: `request_count("token",
    detail="refresh_token")` counts refreshes.
    """
    logs = RequestLog.objects.all()
    if endpoint is not None:
        logs = logs.filter(endpoint=endpoint)
    if detail is not None:
        logs = logs.filter(detail=detail)
    if status is not None:
        logs = logs.filter(status=status)
    return logs.count()


def _tokens(kind: str | None, user_id: str | None) -> QuerySet[Token]:
    tokens = Token.objects.all()
    if kind is not None:
        tokens = tokens.filter(kind=kind)
    if user_id is not None:
        tokens = tokens.filter(grant__user_id=user_id)
    return tokens


def expire_access_tokens(user_id: str | None = None) -> int:
    """Expire every access token (of one Smartcar user); returns how many."""
    past = timezone.now() - timedelta(seconds=1)
    return _tokens(Token.Kind.ACCESS, user_id).update(expires_at=past)


def expire_refresh_tokens(user_id: str | None = None) -> int:
    """Expire every refresh token (of one Smartcar user); returns how many."""
    past = timezone.now() - timedelta(seconds=1)
    return _tokens(Token.Kind.REFRESH, user_id).update(expires_at=past)


def revoke_tokens(user_id: str | None = None) -> int:
    """Revoke every access and refresh token (of one Smartcar user); returns how many."""
    return _tokens(None, user_id).update(revoked=True)


def issue_code(
    client_id: str,
    redirect_uri: str,
    *,
    email: str = "owner@example.com",
    make: str = "CHEVROLET",
    scopes: Iterable[str] = DEFAULT_SCOPES,
    vehicles: Iterable[str] | None = None,
    mode: str = "test",
) -> str:
    """An authorization code as if `email` had allowed `client_id` through Connect.

    The account's cars are those Connect would show (`data.vehicles_for(email, make)`;
    "60-vehicles@smartcar.com" has 60); `vehicles` keeps only the given vehicle ids.
    Exchange the code with the SDK: `AuthClient(...).exchange_code(code)`.
    """
    cars = data.vehicles_for(email, make)
    if vehicles is not None:
        by_id = {car.vehicle_id: car for car in cars}
        wanted = list(vehicles)
        unknown = [vehicle_id for vehicle_id in wanted if vehicle_id not in by_id]
        if unknown:
            raise ValueError(f"Not cars of {email} at {make}: {unknown}")
        cars = [by_id[vehicle_id] for vehicle_id in wanted]
    grant = grants.create_grant(
        client_id=client_id,
        user_id=data.user_id_for(email),
        email=email,
        mode=mode,
        scopes=[scope.removeprefix("required:") for scope in scopes],
        vehicles=cars,
    )
    return grants.issue_code(grant, redirect_uri)
