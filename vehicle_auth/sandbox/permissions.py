"""Smartcar's permissions (OAuth scopes) and the plain words Connect uses to describe them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A scope token with this prefix is one the owner cannot untick on the grant screen.
REQUIRED_PREFIX = "required:"

# Every permission Smartcar documents (smartcar.com/docs/api-reference/permissions), worded
# for a car owner reading the grant screen. A name missing here is not a Smartcar permission:
# Connect answers `configuration_error` for it.
DESCRIPTIONS: dict[str, str] = {
    "read_vehicle_info": "Know make, model, and year",
    "read_vin": "Read VIN",
    "read_odometer": "Retrieve total distance traveled",
    "read_location": "Access the vehicle's location",
    "read_battery": "Read the battery's charge level and range",
    "read_charge": "Know whether the vehicle is charging",
    "read_charge_events": "Receive notifications about charging",
    "read_charge_locations": "Access previous charging locations and their settings",
    "read_charge_records": "Read charge records and their billing information",
    "read_fuel": "Read fuel tank level",
    "read_tires": "Read tire pressure",
    "read_engine_oil": "Read engine oil health",
    "read_security": "Know whether doors, windows and trunk are locked or open",
    "read_speedometer": "Know the vehicle's speed",
    "read_compass": "Know the compass direction the vehicle is facing",
    "read_thermometer": "Read temperatures inside and outside the vehicle",
    "read_climate": "Read climate control status and settings",
    "read_alerts": "Read alerts from the vehicle",
    "read_diagnostics": "Read system status and diagnostic trouble codes",
    "read_extended_vehicle_info": "Read the vehicle's configuration",
    "read_service_history": "Read the dealer service history",
    "read_user_profile": "Read your account profile, such as email and phone number",
    "control_security": "Lock or unlock the vehicle",
    "control_charge": "Start or stop charging and change charge settings",
    "control_climate": "Change climate control settings",
    "control_navigation": "Send destinations to the navigation system",
    "control_pin": "Change the PIN and turn on PIN to Drive",
    "control_trunk": "Open the trunk or frunk",
}


@dataclass(frozen=True)
class RequestedPermission:
    """One permission an application asks for, as the grant screen shows it."""

    name: str  # without the `required:` prefix
    required: bool

    @property
    def description(self) -> str:
        return describe(self.name)


def describe(name: str) -> str:
    """The plain-words description of permission `name` (the raw name when it has none)."""
    return DESCRIPTIONS.get(name, name)


def is_known(name: str) -> bool:
    return name in DESCRIPTIONS


def parse_scopes(tokens: Iterable[str]) -> list[RequestedPermission]:
    """Scope tokens (as split from the `scope` parameter) as permissions, in request order.

    A permission asked for twice appears once; if either request was `required:`, it is.
    """
    order: list[str] = []
    required: dict[str, bool] = {}
    for token in tokens:
        is_required = token.startswith(REQUIRED_PREFIX)
        name = token.removeprefix(REQUIRED_PREFIX) if is_required else token
        if name not in required:
            order.append(name)
            required[name] = False
        required[name] = required[name] or is_required
    return [RequestedPermission(name, required[name]) for name in order]


def unknown_permissions(tokens: Iterable[str]) -> list[str]:
    """The requested tokens that name no Smartcar permission, as they were written."""
    return [
        token
        for token, permission in ((t, t.removeprefix(REQUIRED_PREFIX)) for t in tokens)
        if not is_known(permission)
    ]
