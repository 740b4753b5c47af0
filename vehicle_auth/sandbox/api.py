"""The sandbox's vehicle API v2.0: the calls vehicle_auth makes (SMARTCAR.md §4).

Order of checks: the bearer token (401), the request's parameters (400), the
vehicle (404), then the permission (403).
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from vehicle_auth.sandbox.errors import ApiError
from vehicle_auth.sandbox.faults import sandbox_view
from vehicle_auth.sandbox.models import Token, Vehicle

# Smartcar's paging of /vehicles: 10 by default, at most 50. The SDK asks /permissions for 25.
VEHICLES_LIMIT = (10, 50)
PERMISSIONS_LIMIT = (25, 50)
MAX_OFFSET = 2**31 - 1

UNIT_SYSTEMS = ("metric", "imperial")
KM_PER_MILE = 1.609344

# Access tokens and vehicle ids are UUIDs; anything else is refused before any query (it
# could hold characters PostgreSQL refuses, such as NUL).
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,64}")
_VEHICLE_ID = re.compile(r"[A-Za-z0-9-]{1,36}")


def _access_token(request: HttpRequest) -> Token:
    """The live access token of the `Authorization: Bearer` header; raises AUTHENTICATION."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and _TOKEN.fullmatch(value):
        token = (
            Token.objects.select_related("grant")
            .filter(token=value, kind=Token.Kind.ACCESS, revoked=False)
            .first()
        )
        if token is not None and token.expires_at > timezone.now():
            return token
    raise ApiError("AUTHENTICATION")


def _paging(request: HttpRequest, limits: tuple[int, int]) -> tuple[int, int]:
    default_limit, max_limit = limits
    limit = _integer(request, "limit", default_limit, 1, max_limit)
    offset = _integer(request, "offset", 0, 0, MAX_OFFSET)
    return limit, offset


def _integer(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
        raise ApiError(
            "VALIDATION",
            "PARAMETER",
            description=f"`{name}` must be an integer from {low} to {high}.",
        )
    return int(raw)


def _unit_system(request: HttpRequest) -> str:
    value = request.headers.get("sc-unit-system", "metric").strip().lower() or "metric"
    if value not in UNIT_SYSTEMS:
        raise ApiError(
            "VALIDATION",
            "PARAMETER",
            description="The sc-unit-system header must be `metric` or `imperial`.",
        )
    return value


def _vehicle(token: Token, vehicle_id: str) -> Vehicle:
    """The car `vehicle_id` if the token's grant still includes it; else RESOURCE_NOT_FOUND."""
    vehicle = None
    if _VEHICLE_ID.fullmatch(vehicle_id):
        vehicle = Vehicle.objects.filter(grant=token.grant, vehicle_id=vehicle_id).first()
    if vehicle is None:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            "PATH",
            description="No vehicle with this id is connected to your application for this "
            "token. Please check the vehicle id and try again.",
        )
    return vehicle


def _require(token: Token, permission: str) -> None:
    if permission not in token.grant.scopes:
        raise ApiError("PERMISSION")


def _page(items: list[Any], limit: int, offset: int) -> tuple[list[Any], dict[str, int]]:
    return items[offset : offset + limit], {"count": len(items), "offset": offset}


def _data(body: dict[str, Any], unit_system: str) -> JsonResponse:
    """A vehicle-data answer, with the headers the SDK reads into `.meta`."""
    response = JsonResponse(body)
    stamp = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    response["SC-Unit-System"] = unit_system
    response["SC-Data-Age"] = stamp
    response["SC-Fetched-At"] = stamp
    return response


GET = ("GET",)


@csrf_exempt
@sandbox_view("user", methods=GET)
def user(request: HttpRequest) -> HttpResponse:
    """`GET /v2.0/user`: the Smartcar user behind the token."""
    return JsonResponse({"id": _access_token(request).grant.user_id})


@csrf_exempt
@sandbox_view("vehicles", methods=GET)
def vehicles(request: HttpRequest) -> HttpResponse:
    """`GET /v2.0/vehicles?limit=&offset=`: the ids of the cars in the token's grant."""
    token = _access_token(request)
    limit, offset = _paging(request, VEHICLES_LIMIT)
    ids = list(
        Vehicle.objects.filter(grant=token.grant)
        .order_by("position", "pk")
        .values_list("vehicle_id", flat=True)
    )
    page, paging = _page(ids, limit, offset)
    return JsonResponse({"vehicles": page, "paging": paging})


@csrf_exempt
@sandbox_view("attributes", methods=GET)
def attributes(request: HttpRequest, vehicle_id: str) -> HttpResponse:
    """`GET /v2.0/vehicles/{id}/`: make, model and year (a number)."""
    token = _access_token(request)
    unit_system = _unit_system(request)
    vehicle = _vehicle(token, vehicle_id)
    _require(token, "read_vehicle_info")
    body = {
        "id": vehicle.vehicle_id,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
    }
    return _data(body, unit_system)


@csrf_exempt
@sandbox_view("vin", methods=GET)
def vin(request: HttpRequest, vehicle_id: str) -> HttpResponse:
    """`GET /v2.0/vehicles/{id}/vin`."""
    token = _access_token(request)
    unit_system = _unit_system(request)
    vehicle = _vehicle(token, vehicle_id)
    _require(token, "read_vin")
    return _data({"vin": vehicle.vin}, unit_system)


@csrf_exempt
@sandbox_view("odometer", methods=GET)
def odometer(request: HttpRequest, vehicle_id: str) -> HttpResponse:
    """`GET /v2.0/vehicles/{id}/odometer`: kilometres, or miles with `sc-unit-system: imperial`."""
    token = _access_token(request)
    unit_system = _unit_system(request)
    vehicle = _vehicle(token, vehicle_id)
    _require(token, "read_odometer")
    distance = vehicle.odometer
    if unit_system == "imperial":
        distance = distance / KM_PER_MILE
    return _data({"distance": round(distance, 2)}, unit_system)


@csrf_exempt
@sandbox_view("permissions", methods=GET)
def permissions(request: HttpRequest, vehicle_id: str) -> HttpResponse:
    """`GET /v2.0/vehicles/{id}/permissions`: the granted scopes, paged; needs no permission."""
    token = _access_token(request)
    limit, offset = _paging(request, PERMISSIONS_LIMIT)
    _vehicle(token, vehicle_id)
    page, paging = _page(list(token.grant.scopes), limit, offset)
    return JsonResponse({"permissions": page, "paging": paging})


@csrf_exempt
@sandbox_view("disconnect", methods=("DELETE",))
def disconnect(request: HttpRequest, vehicle_id: str) -> HttpResponse:
    """`DELETE /v2.0/vehicles/{id}/application`: the app's access to that car ends.

    The token keeps working for the grant's other cars (and for /user and /vehicles).
    """
    token = _access_token(request)
    _vehicle(token, vehicle_id).delete()
    return JsonResponse({"status": "success"})


@csrf_exempt
@sandbox_view("not_found")
def not_found(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """Any other path under /v2.0/: RESOURCE_NOT_FOUND, as Smartcar answers."""
    raise ApiError("RESOURCE_NOT_FOUND", "PATH")


@csrf_exempt
@sandbox_view("not_found")
def unsupported_version(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """A path under another API version (`/v1.0/...`): RESOURCE_NOT_FOUND with code VERSION."""
    raise ApiError("RESOURCE_NOT_FOUND", "VERSION")
