"""The only module that talks to Smartcar: SDK calls with deadlines, error mapping, aware times.

Everything else in vehicle_auth calls these functions and sees plain data and our own
exceptions (`SmartcarError`, `SmartcarUnavailable`), never the SDK's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
import smartcar
import smartcar.config
from smartcar.exception import SmartcarException

from vehicle_auth.concurrency import (
    Deadline,
    DeadlineExceeded,
    call_with_deadline,
    run_concurrently,
)
from vehicle_auth.conf import conf
from vehicle_auth.crypto import Secret
from vehicle_auth.exceptions import SmartcarError, SmartcarUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 50  # the most /vehicles returns per page
# Smartcar's own origins, as the SDK set them at import (before anyone repointed them).
_SDK_ORIGINS = {
    "CONNECT_ORIGIN": smartcar.config.CONNECT_ORIGIN,
    "AUTH_ORIGIN": smartcar.config.AUTH_ORIGIN,
    "API_ORIGIN": smartcar.config.API_ORIGIN,
}
_origins_lock = threading.Lock()


@dataclass(frozen=True)
class Tokens:
    """An access + refresh token pair with aware expiry times."""

    access_token: Secret
    refresh_token: Secret
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True)
class VehicleInfo:
    smartcar_id: str
    make: str = ""
    model: str = ""
    year: int | None = None
    vin: str = ""


@dataclass(frozen=True)
class LinkedAccount:
    """What one successful trip through Connect gives us."""

    smartcar_user_id: str
    tokens: Tokens
    vehicles: list[VehicleInfo] = field(default_factory=list)


def new_deadline() -> Deadline:
    """The bound on how long one site request may wait on Smartcar, in all."""
    return Deadline(conf.REQUEST_TIMEOUT)


def _configure_origins() -> None:
    """Point the SDK at the configured origins (the SDK reads its config at call time)."""
    wanted = {
        "CONNECT_ORIGIN": conf.SMARTCAR_CONNECT_ORIGIN.rstrip("/"),
        "AUTH_ORIGIN": conf.SMARTCAR_AUTH_ORIGIN,
        "API_ORIGIN": conf.SMARTCAR_API_ORIGIN.rstrip("/"),
    }
    with _origins_lock:
        for name, value in wanted.items():
            value = value or _SDK_ORIGINS[name]
            if getattr(smartcar.config, name) != value:
                setattr(smartcar.config, name, value)


def _auth_client() -> smartcar.AuthClient:
    _configure_origins()
    return smartcar.AuthClient(
        client_id=conf.SMARTCAR_CLIENT_ID,
        client_secret=conf.SMARTCAR_CLIENT_SECRET,
        redirect_uri=conf.SMARTCAR_REDIRECT_URI,
        mode=conf.SMARTCAR_MODE,
    )


def _translate(exc: BaseException) -> SmartcarError:
    """Our exception for whatever the SDK raised; never carries a token."""
    if isinstance(exc, DeadlineExceeded):
        return SmartcarUnavailable("timeout", "Smartcar did not answer in time.")
    if isinstance(exc, SmartcarException):
        status = getattr(exc, "status_code", None)
        error_type = getattr(exc, "type", None)
        code = getattr(exc, "code", None)
        description = getattr(exc, "description", None) or getattr(exc, "message", None) or ""
        retry_after = _parse_retry_after(getattr(exc, "retry_after", None))
        if status is None and (error_type is None or description == "SDK_ERROR"):
            # A transport failure: refused, reset, DNS, the SDK's own timeout.
            return SmartcarUnavailable(
                "network_error", "Smartcar could not be reached.", error_type=error_type
            )
        reason = ":".join(part for part in (error_type, code) if part) or f"http_{status}"
        kind = (
            SmartcarUnavailable
            if status is not None and (status >= 500 or status == 429)
            else SmartcarError
        )
        return kind(
            reason[:100],
            _clip(description),
            status=status,
            error_type=error_type,
            retry_after=retry_after,
        )
    if isinstance(exc, KeyError | ValueError | TypeError | requests.exceptions.JSONDecodeError):
        return SmartcarError("malformed_response", "Smartcar sent an answer we cannot read.")
    return SmartcarUnavailable("unexpected_error", type(exc).__name__)


def _clip(text: object, limit: int = 500) -> str:
    return str(text)[:limit]


def _parse_retry_after(value: object) -> int | None:
    try:
        return max(0, int(str(value)))
    except (TypeError, ValueError):
        return None


def _run(calls: list[Callable[[], Any]], deadline: Deadline) -> list[Any]:
    try:
        return run_concurrently(calls, deadline, conf.MAX_PARALLEL_REQUESTS)
    except SmartcarError:
        raise
    except Exception as exc:
        error = _translate(exc)
        logger.warning("Smartcar call failed: %s", error.code)
        raise error from None


def _one(
    call: Callable[[], T],
    deadline: Deadline,
    on_late: Callable[[Any, BaseException | None], None] | None = None,
) -> T:
    try:
        return call_with_deadline(call, deadline, on_late)
    except SmartcarError:
        raise
    except Exception as exc:
        error = _translate(exc)
        logger.warning("Smartcar call failed: %s", error.code)
        raise error from None


def run_bounded(call: Callable[[], T], deadline: Deadline | None = None) -> T:
    """Run host code's own SDK call under our deadline; its exceptions pass through as they are.

    Raises SmartcarUnavailable("timeout") when Smartcar does not answer in time.
    """
    try:
        return call_with_deadline(call, deadline or new_deadline())
    except DeadlineExceeded:
        raise _translate(DeadlineExceeded()) from None


def _aware(naive_utc: datetime) -> datetime:
    # The SDK computes expiries with datetime.utcnow(): naive, but UTC.
    return naive_utc.replace(tzinfo=UTC)


def _tokens(access: Any) -> Tokens:
    if not access.access_token or not access.refresh_token:
        raise SmartcarError("malformed_response", "Smartcar's token answer lacks a token.")
    return Tokens(
        access_token=Secret(access.access_token),
        refresh_token=Secret(access.refresh_token),
        access_expires_at=_aware(access.expiration),
        refresh_expires_at=_aware(access.refresh_expiration),
    )


# --- Connect and tokens ---------------------------------------------------------------------


def build_connect_url(
    *,
    state: str,
    scopes: Iterable[str],
    make: str = "",
    single_select: bool = False,
    single_select_vin: str = "",
    force_prompt: bool = False,
) -> str:
    """The Smartcar Connect URL for one authorization attempt (no network call)."""
    options: dict[str, Any] = {"state": state, "force_prompt": force_prompt}
    if make:
        options["make_bypass"] = make
    if single_select_vin:
        options["single_select"] = {"vin": single_select_vin}
    elif single_select:
        options["single_select"] = {"enabled": True}
    return _auth_client().get_auth_url(list(scopes), options)


def exchange_code(code: str, deadline: Deadline | None = None) -> Tokens:
    client = _auth_client()
    return _tokens(_one(lambda: client.exchange_code(code), deadline or new_deadline()))


def refresh_tokens(
    refresh_token: str,
    deadline: Deadline | None = None,
    on_late: Callable[[Tokens | None], None] | None = None,
) -> Tokens:
    """New tokens for `refresh_token` (which Smartcar then retires).

    If Smartcar answers only after the deadline, it has rotated the refresh token all the
    same: `on_late` is then called, on another thread, with that late pair so it is not
    lost (or with None when the late call failed after all).
    """
    client = _auth_client()

    def late(access: Any, error: BaseException | None) -> None:
        if on_late is None:
            return
        tokens = None
        if error is None:
            try:
                tokens = _tokens(access)
            except SmartcarError:
                tokens = None
        on_late(tokens)

    access = _one(
        lambda: client.exchange_refresh_token(refresh_token), deadline or new_deadline(), late
    )
    return _tokens(access)


# --- Vehicle API ----------------------------------------------------------------------------


def vehicle(vehicle_id: str, access_token: str) -> smartcar.Vehicle:
    """An SDK vehicle object for host code (no network call)."""
    _configure_origins()
    # set_unit_system() always raises in SDK 6.19: the constructor option is the only way.
    return smartcar.Vehicle(vehicle_id, access_token, {"unit_system": conf.UNIT_SYSTEM})


def get_user_id(access_token: str, deadline: Deadline | None = None) -> str:
    _configure_origins()
    return str(_one(lambda: smartcar.get_user(access_token).id, deadline or new_deadline()))


def _attributes(access_token: str, vehicle_id: str) -> VehicleInfo:
    attributes = vehicle(vehicle_id, access_token).attributes()
    year = attributes.year
    return VehicleInfo(
        smartcar_id=vehicle_id,
        make=str(attributes.make or "")[:64],
        model=str(attributes.model or "")[:128],
        year=int(year) if year not in (None, "") else None,
    )


def _vin(access_token: str, vehicle_id: str) -> str:
    try:
        return str(vehicle(vehicle_id, access_token).vin().vin)[:17]
    except SmartcarException as exc:
        # The owner may untick "Read VIN" at Connect: that is not a failure.
        if getattr(exc, "type", None) == "PERMISSION":
            return ""
        raise


def fetch_linked_account(
    code: str, *, with_vin: bool, deadline: Deadline | None = None
) -> LinkedAccount:
    """Exchange `code`, then read the user, every vehicle and their attributes.

    Three round trips whatever the number of cars: the token; `/user` beside the first page
    of `/vehicles`; then the other pages beside every car's attributes (and VIN).
    """
    deadline = deadline or new_deadline()
    tokens = exchange_code(code, deadline)
    access = tokens.access_token

    def first_page() -> Any:
        return smartcar.get_vehicles(access, {"limit": PAGE_SIZE, "offset": 0})

    user, page = _run([lambda: smartcar.get_user(access), first_page], deadline)
    ids = [str(vid) for vid in page.vehicles]
    total = int(page.paging.count)

    def page_at(offset: int) -> Callable[[], list[str]]:
        return lambda: [
            str(v)
            for v in smartcar.get_vehicles(access, {"limit": PAGE_SIZE, "offset": offset}).vehicles
        ]

    def details(vehicle_ids: list[str]) -> list[Callable[[], Any]]:
        calls: list[Callable[[], Any]] = []
        for vid in vehicle_ids:
            calls.append(lambda vid=vid: _attributes(access, vid))
            if with_vin:
                calls.append(lambda vid=vid: _vin(access, vid))
        return calls

    def combine(vehicle_ids: list[str], answers: list[Any]) -> list[VehicleInfo]:
        step = 2 if with_vin else 1
        infos = answers[::step]
        if with_vin:
            infos = [replace(info, vin=vin) for info, vin in zip(infos, answers[1::2], strict=True)]
        return infos

    more_pages = [page_at(offset) for offset in range(len(ids), total, PAGE_SIZE)] if ids else []
    results = _run([*more_pages, *details(ids)], deadline)
    later_ids = [vid for chunk in results[: len(more_pages)] for vid in chunk]
    infos = combine(ids, results[len(more_pages) :])
    if later_ids:
        infos += combine(later_ids, _run(details(later_ids), deadline))

    unique: dict[str, VehicleInfo] = {item.smartcar_id: item for item in infos}
    return LinkedAccount(
        smartcar_user_id=str(user.id)[:64], tokens=tokens, vehicles=list(unique.values())
    )


def disconnect_vehicles(
    access_token: str, vehicle_ids: Iterable[str], deadline: Deadline | None = None
) -> dict[str, SmartcarError | None]:
    """Revoke the app's access to each vehicle; per vehicle, None or the error it gave.

    A vehicle Smartcar no longer serves us counts as revoked: 404, or 401 AUTHENTICATION on
    the token just checked fresh (Smartcar answers that for a car outside the token's grant,
    e.g. one the owner already removed at Smartcar).
    """
    deadline = deadline or new_deadline()
    _configure_origins()

    def revoke(vehicle_id: str) -> Callable[[], SmartcarError | None]:
        def call() -> SmartcarError | None:
            try:
                vehicle(vehicle_id, access_token).disconnect()
            except Exception as exc:
                error = _translate(exc)
                gone = error.status == 404 or error.error_type == "AUTHENTICATION"
                return None if gone else error
            return None

        return call

    ids = list(vehicle_ids)
    results = _run([revoke(vid) for vid in ids], deadline)
    return dict(zip(ids, results, strict=True))


def is_authentication_error(exc: BaseException) -> bool:
    """Whether a vehicle call failed because Smartcar refused our access token (401)."""
    if isinstance(exc, SmartcarError):
        return exc.error_type == "AUTHENTICATION"
    return isinstance(exc, SmartcarException) and getattr(exc, "type", None) == "AUTHENTICATION"
