"""The `sandbox_view` decorator: on/off switch, fault injection and request log of every endpoint.

Faults come from the `SMARTCAR_SANDBOX_FAULTS` setting (`{"token": {"latency": 0.1}, "*": {...}}`,
applied to every request) and from `Fault` rows written by `control.inject()`. A matching row
replaces the settings' fault for that request: rows for the endpoint win over rows for "*",
older rows over newer ones.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.db.models import F, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError

from vehicle_auth.sandbox import conf
from vehicle_auth.sandbox.errors import (
    ApiError,
    OAuthError,
    SandboxError,
    oauth_body_for_status,
    v2_body_for_status,
)
from vehicle_auth.sandbox.models import Fault, RequestLog

TOKEN = "token"
CONNECT = "connect"
API_ENDPOINTS = (
    "user",
    "vehicles",
    "attributes",
    "vin",
    "permissions",
    "odometer",
    "disconnect",
    # Paths under /v2.0/ (or another version) that name no call.
    "not_found",
)
ENDPOINTS = (TOKEN, CONNECT, *API_ENDPOINTS)

# How often a held ("hang") request looks whether its fault row is still there.
HANG_POLL = 0.05

View = Callable[..., HttpResponse]

# Requests being answered / being held by a hang fault in this process. The live server of
# a test suite runs in the test's own process, so tests can wait on these without sleeping.
_activity = threading.Condition()
_in_flight = 0
_holding = 0


@dataclass(frozen=True)
class ActiveFault:
    """The fault applied to one request."""

    fault_id: int | None  # the Fault row, None when it comes from settings
    latency: float = 0.0
    hang: float | None = None
    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    retry_after: int | None = None


def _from_settings(endpoint: str) -> ActiveFault | None:
    configured: dict[str, Any] = conf.get("FAULTS") or {}
    merged: dict[str, Any] = {**configured.get("*", {}), **configured.get(endpoint, {})}
    if not merged:
        return None
    body = merged.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    return ActiveFault(
        fault_id=None,
        latency=float(merged.get("latency") or 0),
        hang=merged.get("hang"),
        status=merged.get("status"),
        body=body,
        content_type=merged.get("content_type", "application/json"),
        retry_after=merged.get("retry_after"),
    )


def _claim_row(endpoint: str) -> ActiveFault | None:
    rows = Fault.objects.filter(endpoint__in=(endpoint, "*")).filter(
        Q(remaining__isnull=True) | Q(remaining__gt=0)
    )
    for row in sorted(rows, key=lambda f: (f.endpoint == "*", f.created_at, f.pk)):
        if row.remaining is not None:
            # One UPDATE decides, so concurrent requests never share the last use.
            claimed = Fault.objects.filter(pk=row.pk, remaining__gt=0).update(
                remaining=F("remaining") - 1
            )
            if not claimed:
                continue
        return ActiveFault(
            fault_id=row.pk,
            latency=row.latency,
            hang=row.hang,
            status=row.status,
            body=row.body,
            content_type=row.content_type,
            retry_after=row.retry_after,
        )
    return None


def active_fault(endpoint: str) -> ActiveFault | None:
    """The fault to apply to one request of `endpoint` (a row's use is counted)."""
    return _claim_row(endpoint) or _from_settings(endpoint)


def _hold(fault: ActiveFault) -> None:
    """Hold the request up to `hang` seconds; stop early once its fault row is deleted."""
    global _holding
    deadline = time.monotonic() + min(float(fault.hang or 0), float(conf.get("MAX_HANG")))
    with _activity:
        _holding += 1
        _activity.notify_all()
    try:
        while (left := deadline - time.monotonic()) > 0:
            if fault.fault_id is not None and not Fault.objects.filter(pk=fault.fault_id).exists():
                break
            time.sleep(min(HANG_POLL, left))
    finally:
        with _activity:
            _holding -= 1
            _activity.notify_all()


def _flavour(endpoint: str) -> str:
    if endpoint == TOKEN:
        return "oauth"
    if endpoint == CONNECT:
        return "html"
    return "v2"


def _forced_response(
    endpoint: str, status: int, fault: ActiveFault, request_id: str
) -> HttpResponse:
    if fault.body is not None:
        return HttpResponse(
            _with_request_id(fault.body, fault.content_type, request_id),
            status=status,
            content_type=fault.content_type,
        )
    flavour = _flavour(endpoint)
    if flavour == "oauth":
        return JsonResponse(oauth_body_for_status(status), status=status)
    if flavour == "html":
        return HttpResponse(
            f"<!doctype html><title>Error {status}</title><h1>Smartcar Connect error</h1>",
            status=status,
            content_type="text/html; charset=utf-8",
        )
    return JsonResponse(v2_body_for_status(status, request_id), status=status)


def _with_request_id(body: str, content_type: str, request_id: str) -> str:
    """Fill `"requestId": null` of an injected v2.0 body with this response's request id.

    `control.inject(error_type=...)` stores bodies that way, so body and SC-Request-Id header
    agree as they do at Smartcar. Any other body goes out byte for byte.
    """
    if "json" not in content_type or '"requestId": null' not in body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and "requestId" in data and data["requestId"] is None:
        data["requestId"] = request_id
        return json.dumps(data)
    return body


def _log(endpoint: str, request: HttpRequest, status: int, detail: str) -> None:
    RequestLog.objects.create(
        endpoint=endpoint,
        method=request.method[:10] if request.method else "",
        path=request.get_full_path(),
        status=status,
        # The field is short and PostgreSQL refuses NUL characters: keep any input loggable.
        detail=detail.replace("\x00", "")[:40],
    )


def _method_not_allowed(endpoint: str, allowed: tuple[str, ...]) -> SandboxError:
    headers = {"Allow": ", ".join(allowed)}
    if endpoint == TOKEN:
        return OAuthError("invalid_request", "The token endpoint only accepts POST.", 405, headers)
    return ApiError(
        "VALIDATION",
        None,
        status=405,
        description=f"Method not allowed here. Use {' or '.join(allowed)}.",
        headers=headers,
    )


def sandbox_view(endpoint: str, *, methods: Iterable[str] | None = None) -> Callable[[View], View]:
    """Make a view a sandbox endpoint named `endpoint` (one of `ENDPOINTS`).

    - 404 while the sandbox is disabled (checked on every request, so override_settings works);
    - `methods`: others get 405 with the endpoint's error body (None: the view decides);
    - applies the endpoint's fault: latency, hang, forced status/body, Retry-After;
    - turns `errors.SandboxError` raised by the view into its JSON answer;
    - API endpoints get an `SC-Request-Id` header (also in error bodies as `requestId`); the
      view finds it in `request.sandbox_request_id`;
    - logs the request in `RequestLog` (detail: the view may set `request.sandbox_log_detail`).
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"Unknown sandbox endpoint {endpoint!r}; use one of {ENDPOINTS}.")
    allowed = tuple(m.upper() for m in methods) if methods is not None else None

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            global _in_flight
            if not conf.enabled():
                raise Http404("The Smartcar sandbox is disabled.")
            with _activity:
                _in_flight += 1
            try:
                return _answer(view, request, args, kwargs)
            finally:
                with _activity:
                    _in_flight -= 1
                    _activity.notify_all()

        return wrapped

    def _answer(view: View, request: HttpRequest, args: Any, kwargs: Any) -> HttpResponse:
        request_id = str(uuid.uuid4())
        request.sandbox_request_id = request_id  # type: ignore[attr-defined]
        request.sandbox_log_detail = ""  # type: ignore[attr-defined]
        fault = None
        try:
            if allowed is not None and request.method not in allowed:
                raise _method_not_allowed(endpoint, allowed)
            fault = active_fault(endpoint)
            response = _apply(view, request, args, kwargs, fault, request_id)
        except SandboxError as error:
            response = error.response(request_id)
        if endpoint in API_ENDPOINTS:
            response["SC-Request-Id"] = request_id
        if fault is not None and fault.retry_after is not None:
            response["Retry-After"] = str(fault.retry_after)
        _log(endpoint, request, response.status_code, request.sandbox_log_detail)  # type: ignore[attr-defined]
        return response

    def _apply(
        view: View,
        request: HttpRequest,
        args: Any,
        kwargs: Any,
        fault: ActiveFault | None,
        request_id: str,
    ) -> HttpResponse:
        if fault is None:
            return view(request, *args, **kwargs)
        if fault.latency > 0:
            time.sleep(min(fault.latency, float(conf.get("MAX_HANG"))))
        status = fault.status
        if fault.hang:
            _hold(fault)
            status = status or 504
        elif status is None and fault.body is not None:
            status = 200  # a body alone replaces a successful answer
        if status is None or (fault.body is None and status < 400):
            response = view(request, *args, **kwargs)
            if status is not None:
                response.status_code = status
            return response
        if endpoint == TOKEN:
            # The log says which grant a forced answer was given to, as for real answers.
            request.sandbox_log_detail = _grant_type(request)  # type: ignore[attr-defined]
        return _forced_response(endpoint, status, fault, request_id)

    return decorator


def read_form(request: HttpRequest) -> QueryDict | None:
    """The request's form fields, or None when the body cannot be parsed as a form."""
    try:
        return request.POST
    except (MultiPartParserError, SuspiciousOperation, OSError):
        # Broken multipart, too many fields or too large a body, a client gone mid-upload.
        return None


def _grant_type(request: HttpRequest) -> str:
    form = read_form(request)
    return str(form.get("grant_type", "")) if form is not None else ""


def wait_until_holding(count: int = 1, *, timeout: float = 5.0) -> bool:
    """Block until `count` requests are held by hang faults; False if `timeout` passes first.

    Only sees requests served by this process (a test suite's live server).
    """
    with _activity:
        return _activity.wait_for(lambda: _holding >= count, timeout=timeout)


def wait_until_idle(*, timeout: float = 5.0) -> bool:
    """Block until this process serves no sandbox request; False if `timeout` passes first."""
    with _activity:
        return _activity.wait_for(lambda: _in_flight == 0, timeout=timeout)
