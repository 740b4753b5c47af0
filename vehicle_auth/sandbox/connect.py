"""The sandbox's Smartcar Connect screens: preamble, brand list, brand login and grant.

A trip starts at `GET oauth/authorize` (what the SDK's `get_auth_url` builds) and always
ends in a 302 to the application's `redirect_uri`, with `code` or `error` (SMARTCAR.md §1, §2).
The screens between carry the ConnectSession's random key in their URLs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from vehicle_auth.sandbox import conf, data, grants, permissions
from vehicle_auth.sandbox.data import FakeVehicle
from vehicle_auth.sandbox.models import ConnectSession, Fault, Grant

MODES = ("live", "test", "simulated")
APPROVAL_PROMPTS = ("auto", "force")
# Longer values are refused with a clear page rather than stored and echoed back.
MAX_PARAMETER_LENGTH = 4096
MAX_EMAIL_LENGTH = 254  # ConnectSession.email
VIN_LENGTH = 17
# The grant form of a 999-car account has more fields than Django's default
# DATA_UPLOAD_MAX_NUMBER_FIELDS (1000), so the sandbox parses that body itself.
MAX_FORM_FIELDS = data.MAX_VEHICLES + len(permissions.DESCRIPTIONS) + 10
# How many of a user's earlier grants `approval_prompt=auto` looks through.
PREVIOUS_GRANTS_CHECKED = 50

# Connect's error codes and their descriptions, exactly as SMARTCAR.md §2 lists them.
ERROR_DESCRIPTIONS: dict[str, str] = {
    "access_denied": "User denied access to application.",
    "vehicle_incompatible": "The user's vehicle is not compatible.",
    "invalid_subscription": "User does not have an active connected vehicle subscription",
    "no_vehicles": "No vehicles found. Please add vehicles to your account and try again.",
    "configuration_error": ("There has been an error in the configuration of your application."),
    "server_error": "Unexpected server error. Please try again.",
    "user_manually_returned_to_application": (
        "The user exited Connect before granting your application access"
    ),
}
# For an injected error code Smartcar has not documented (apps must cope with new ones).
GENERIC_ERROR_DESCRIPTION = "Smartcar Connect could not complete the request."

# Tesla owners must also add the application's virtual key to their car.
TESLA_VIRTUAL_KEY_URL = "https://www.tesla.com/_ak/smartcar.com"

# How brands read on screen where `str.title()` gets them wrong.
BRAND_NAMES = {"BMW": "BMW"}

ENDED_MESSAGE = (
    "This Connect session has already ended. Go back to the application and start again."
)


class InvalidRequest(Exception):
    """A request the screens refuse; shown to the user as an error page, never redirected."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def brand_name(make: str) -> str:
    """How a make (upper case, as in data.MAKES) is written for people."""
    return BRAND_NAMES.get(make, make.title())


# --- plumbing ----------------------------------------------------------------------------


def _screen(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a Connect screen: 404 when the sandbox is off, error page on InvalidRequest."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Checked per request: settings and runtime overrides may change in a running process.
        if not conf.enabled():
            raise Http404("The Smartcar sandbox is disabled.")
        try:
            return view(request, *args, **kwargs)
        except InvalidRequest as error:
            return _error_page(request, error.message, status=error.status)

    # The screens' POST forms carry no CSRF token: the ConnectSession key in every URL is
    # unguessable (192 random bits) and plays that role, and non-browser drivers (driver.py,
    # host projects' scripts) can then post without a cookie dance.
    return csrf_exempt(never_cache(wrapper))


def _error_page(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(
        request,
        "vehicle_auth_sandbox/error.html",
        {"message": message, "app_name": "Smartcar Connect"},
        status=status,
    )


def _form_data(request: HttpRequest) -> dict[str, list[str]]:
    """The request's parameters: the query string for GET, the form body for POST."""
    if request.method != "POST":
        return dict(request.GET.lists())
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(
                request.body.decode("utf-8", errors="replace"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
                errors="replace",
            )
        except ValueError as error:
            raise InvalidRequest("The form has too many fields.") from error
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        return fields
    return dict(request.POST.lists())


def _check_value(name: str, value: str) -> str:
    if len(value) > MAX_PARAMETER_LENGTH:
        raise InvalidRequest(
            f"The parameter {name!r} is too long ({len(value)} characters; "
            f"at most {MAX_PARAMETER_LENGTH})."
        )
    if "\x00" in value:
        raise InvalidRequest(f"The parameter {name!r} contains a NUL character.")
    return value


def _param(params: Mapping[str, list[str]], name: str, default: str = "") -> str:
    """One parameter given at most once (a repeated one is ambiguous, so refused)."""
    values = params.get(name, [])
    if not values:
        return default
    if len(values) > 1:
        raise InvalidRequest(f"The parameter {name!r} was given {len(values)} times; give it once.")
    return _check_value(name, values[0])


def _params(params: Mapping[str, list[str]], name: str) -> list[str]:
    return [_check_value(name, value) for value in params.get(name, [])]


def _with_query(url: str, query: Mapping[str, str]) -> str:
    """`url` with `query` form-encoded onto its own query string (before any fragment)."""
    parts = urlsplit(url)
    encoded = urlencode(query)
    return urlunsplit(parts._replace(query=f"{parts.query}&{encoded}" if parts.query else encoded))


def _redirect_to(url: str) -> HttpResponse:
    # Not HttpResponseRedirect: it refuses custom schemes (mobile apps register
    # `sc<client id>://exchange`) and Locations over 2048 characters. Only a redirect_uri
    # registered for the application ever gets here.
    response = HttpResponse(status=302)
    response["Location"] = iri_to_uri(url)
    return response


def _back_to_application(redirect_uri: str, state: str, query: Mapping[str, str]) -> HttpResponse:
    query = dict(query)
    if state:
        query["state"] = state
    return _redirect_to(_with_query(redirect_uri, query))


def _error_query(error: str, description: str | None = None, **extra: str) -> dict[str, str]:
    if description is None:
        description = ERROR_DESCRIPTIONS.get(error, GENERIC_ERROR_DESCRIPTION)
    return {"error": error, "error_description": description, **extra}


def _load(key: str) -> ConnectSession:
    session = ConnectSession.objects.filter(key=key).first()
    if session is None:
        raise InvalidRequest(
            "This Connect session does not exist. Go back to the application and start again.",
            status=404,
        )
    if session.finished_at is not None:
        raise InvalidRequest(ENDED_MESSAGE)
    return session


def _finish(session: ConnectSession) -> None:
    """Mark the trip over, once: a double submit or a replayed form finds it already ended."""
    ended = ConnectSession.objects.filter(pk=session.pk, finished_at__isnull=True).update(
        finished_at=timezone.now()
    )
    if not ended:
        raise InvalidRequest(ENDED_MESSAGE)


def _end(session: ConnectSession, query: Mapping[str, str]) -> HttpResponse:
    with transaction.atomic():
        _finish(session)
    return _back_to_application(session.redirect_uri, session.state, query)


def _url(name: str, session: ConnectSession) -> str:
    return reverse(f"vehicle_auth_sandbox:{name}", args=[session.key])


def _context(session: ConnectSession, **extra: Any) -> dict[str, Any]:
    application = grants.get_application(session.client_id)
    return {
        "session": session,
        "app_name": application.name if application else "The application",
        "mode": session.mode,
        "exit_url": _url("connect-exit", session),
        **extra,
    }


# --- the rules of a trip -----------------------------------------------------------------


def _offered_vehicles(session: ConnectSession) -> list[FakeVehicle]:
    """The cars the signed-in account may share (only the one VIN with single_select_vin)."""
    cars = data.vehicles_for(session.email, session.chosen_make)
    if session.single_select_vin:
        cars = [car for car in cars if car.vin == session.single_select_vin]
    return cars


def _previous_consent(session: ConnectSession) -> list[FakeVehicle] | None:
    """With approval_prompt=auto, the cars of an earlier grant that covers every scope asked.

    Single select asks the owner to pick one car, so it always shows the grant screen.
    """
    if session.approval_prompt != "auto" or session.single_select or session.single_select_vin:
        return None
    requested = {p.name for p in permissions.parse_scopes(session.scopes)}
    earlier = Grant.objects.filter(
        client_id=session.client_id,
        user_id=data.user_id_for(session.email),
        mode=session.mode,
    ).order_by("-created_at", "-pk")[:PREVIOUS_GRANTS_CHECKED]
    for grant in earlier.prefetch_related("vehicles"):
        if not requested <= set(grant.scopes):
            continue
        cars = [
            FakeVehicle(v.vehicle_id, v.make, v.model, v.year, v.vin, v.odometer)
            for v in grant.vehicles.all()
            if v.make == session.chosen_make
        ]
        if cars:
            return cars
    return None


def _take_connect_fault() -> dict[str, str] | None:
    """The error query of an injected "connect" fault, using up one of its `remaining`.

    The fault's body is an error code (`server_error`), or a form-encoded query for full
    control (`error=vehicle_incompatible&make=TESLA`). Call inside a transaction.
    """
    faults = Fault.objects.select_for_update().filter(endpoint="connect").order_by("pk")
    for fault in faults:
        if fault.remaining is None:
            break
        if fault.remaining > 1:
            Fault.objects.filter(pk=fault.pk).update(remaining=F("remaining") - 1)
            break
        fault.delete()
        if fault.remaining == 1:  # this was its last use; 0 means it was already used up
            break
    else:
        return None
    body = (fault.body or "server_error").strip()
    if "=" in body:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        error = fields.pop("error", "server_error")
        return _error_query(error, fields.pop("error_description", None), **fields)
    return _error_query(body)


def _allow(
    session: ConnectSession, scopes: Sequence[str], cars: Sequence[FakeVehicle]
) -> HttpResponse:
    """The owner allowed `scopes` for `cars`: a new grant and its code, unless a fault says no."""
    with transaction.atomic():
        _finish(session)
        fault_query = _take_connect_fault()
        if fault_query is not None:
            return _back_to_application(session.redirect_uri, session.state, fault_query)
        grant = grants.create_grant(
            client_id=session.client_id,
            user_id=data.user_id_for(session.email),
            email=session.email,
            mode=session.mode,
            scopes=scopes,
            vehicles=cars,
        )
        query = {"code": grants.issue_code(grant, session.redirect_uri)}
    if session.chosen_make == "TESLA":
        query["virtual_key_url"] = TESLA_VIRTUAL_KEY_URL
    return _back_to_application(session.redirect_uri, session.state, query)


def _after_login(session: ConnectSession) -> HttpResponse:
    """Where a signed-in owner goes: a test-mode ending, a skipped prompt or the grant screen."""
    email = session.email.lower()
    if email == data.INCOMPATIBLE_EMAIL:
        car = data.vehicles_for(email, session.chosen_make)[0]
        return _end(
            session,
            _error_query(
                "vehicle_incompatible",
                vin=car.vin,
                make=car.make,
                model=car.model,
                year=str(car.year),
            ),
        )
    if email == data.INVALID_SUBSCRIPTION_EMAIL:
        return _end(session, _error_query("invalid_subscription"))
    if not _offered_vehicles(session):
        return _end(session, _error_query("no_vehicles"))
    earlier_cars = _previous_consent(session)
    if earlier_cars is not None:
        scopes = [p.name for p in permissions.parse_scopes(session.scopes)]
        return _allow(session, scopes, earlier_cars)
    return redirect(_url("connect-grant", session))


# --- views -------------------------------------------------------------------------------


@_screen
@require_safe
def authorize(request: HttpRequest) -> HttpResponse:
    """`GET oauth/authorize`: check the request, open a ConnectSession, show the preamble."""
    params = _form_data(request)
    client_id = _param(params, "client_id")
    if not client_id:
        raise InvalidRequest("The client_id parameter is missing.")
    application = grants.get_application(client_id)
    if application is None:
        raise InvalidRequest(f"No application is registered with client_id {client_id!r}.")
    redirect_uri = _param(params, "redirect_uri")
    if not redirect_uri:
        raise InvalidRequest("The redirect_uri parameter is missing.")
    if redirect_uri not in application.redirect_uris:
        registered = ", ".join(application.redirect_uris) or "none"
        raise InvalidRequest(
            f"The redirect_uri {redirect_uri!r} is not registered for this application "
            f"(registered: {registered})."
        )
    response_type = _param(params, "response_type")
    if response_type != "code":
        raise InvalidRequest(f"response_type must be 'code', not {response_type!r}.")
    # Smartcar's default when no mode is given is live.
    mode = _param(params, "mode", "live")
    if mode not in MODES:
        raise InvalidRequest(f"mode must be one of live, test or simulated, not {mode!r}.")
    approval_prompt = _param(params, "approval_prompt", "auto")
    if approval_prompt not in APPROVAL_PROMPTS:
        raise InvalidRequest(f"approval_prompt must be auto or force, not {approval_prompt!r}.")
    single_select = _param(params, "single_select", "false").lower()
    if single_select not in ("true", "false"):
        raise InvalidRequest(f"single_select must be true or false, not {single_select!r}.")
    single_select_vin = _param(params, "single_select_vin").strip().upper()
    if single_select_vin and not (
        len(single_select_vin) == VIN_LENGTH
        and single_select_vin.isascii()
        and single_select_vin.isalnum()
    ):
        raise InvalidRequest(
            f"single_select_vin must be a {VIN_LENGTH}-character VIN, not {single_select_vin!r}."
        )
    # An unknown make cannot skip the brand list: the owner picks the brand instead.
    make = _param(params, "make").strip().upper()
    if make not in data.MAKES:
        make = ""
    state = _param(params, "state")

    # From here on the redirect_uri is trusted, so problems go back to the application.
    scopes = _param(params, "scope").split()
    if not scopes:
        return _back_to_application(
            redirect_uri,
            state,
            _error_query(
                "configuration_error",
                status_code="400",
                error_message="No permissions were requested: the scope parameter is empty.",
            ),
        )
    unknown = permissions.unknown_permissions(scopes)
    if unknown:
        return _back_to_application(
            redirect_uri,
            state,
            _error_query(
                "configuration_error",
                status_code="400",
                error_message=f"Unknown permission(s) requested: {', '.join(unknown)}.",
            ),
        )

    session = ConnectSession.objects.create(
        key=grants.new_key(),
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        mode=mode,
        state=state,
        approval_prompt=approval_prompt,
        make=make,
        single_select=single_select == "true" or bool(single_select_vin),
        single_select_vin=single_select_vin,
        flags=_param(params, "flags"),
        user_hint=_param(params, "user"),
    )
    return _render_preamble(request, session)


def _render_preamble(request: HttpRequest, session: ConnectSession) -> HttpResponse:
    next_url = _url("connect-login" if session.make else "connect-brands", session)
    return render(
        request, "vehicle_auth_sandbox/preamble.html", _context(session, next_url=next_url)
    )


@_screen
@require_safe
def preamble(request: HttpRequest, key: str) -> HttpResponse:
    """The first screen again (the browser's back button from the brand list)."""
    return _render_preamble(request, _load(key))


@_screen
@require_safe
def brands(request: HttpRequest, key: str) -> HttpResponse:
    """The brand list, filtered by the search box's `q` (a GET form: works without JS)."""
    session = _load(key)
    if session.make:
        return redirect(_url("connect-login", session))
    query = _param(_form_data(request), "q").strip()
    needle = query.casefold()
    shown = [
        (make, brand_name(make))
        for make in sorted(data.MAKES)
        if needle in make.casefold() or needle in brand_name(make).casefold()
    ]
    return render(
        request,
        "vehicle_auth_sandbox/brands.html",
        _context(
            session,
            brands=shown,
            query=query,
            brands_url=_url("connect-brands", session),
            login_url=_url("connect-login", session),
        ),
    )


def _login_make(session: ConnectSession, params: Mapping[str, list[str]]) -> str:
    if session.make:
        return session.make
    make = _param(params, "make").strip().upper()
    if make not in data.MAKES:
        raise InvalidRequest(
            f"Unknown brand {make!r}." if make else "No brand was chosen.",
        )
    return make


def _render_login(
    request: HttpRequest,
    session: ConnectSession,
    make: str,
    *,
    username: str = "",
    error: str = "",
) -> HttpResponse:
    context = _context(
        session,
        make=make,
        brand=brand_name(make),
        username=username,
        error=error,
        login_url=_url("connect-login", session),
    )
    return render(request, "vehicle_auth_sandbox/login.html", context, status=400 if error else 200)


@_screen
@require_http_methods(["GET", "HEAD", "POST"])
def login(request: HttpRequest, key: str) -> HttpResponse:
    """The brand's login form: test and simulated modes (and live, here) accept any login."""
    session = _load(key)
    params = _form_data(request)
    if not session.make and not params.get("make"):
        return redirect(_url("connect-brands", session))
    make = _login_make(session, params)
    if request.method != "POST":
        return _render_login(request, session, make)
    username = _param(params, "username").strip()
    password = _param(params, "password")
    if not username or not password:
        return _render_login(
            request, session, make, username=username, error="Enter your email and password."
        )
    if len(username) > MAX_EMAIL_LENGTH:
        return _render_login(
            request,
            session,
            make,
            error=f"That email is too long (at most {MAX_EMAIL_LENGTH} characters).",
        )
    session.email = username
    session.chosen_make = make
    session.save(update_fields=["email", "chosen_make"])
    return _after_login(session)


def _render_grant(
    request: HttpRequest,
    session: ConnectSession,
    *,
    checked_scopes: set[str] | None = None,
    checked_vehicles: set[str] | None = None,
    error: str = "",
) -> HttpResponse:
    requested = permissions.parse_scopes(session.scopes)
    cars = _offered_vehicles(session)
    if checked_scopes is None:
        checked_scopes = {p.name for p in requested}
    if checked_vehicles is None:
        # Every car ticked, as Connect does; a single-select list starts on the first.
        chosen = cars[:1] if session.single_select else cars
        checked_vehicles = {car.vehicle_id for car in chosen}
    context = _context(
        session,
        brand=brand_name(session.chosen_make),
        permissions=[
            {"permission": p, "checked": p.required or p.name in checked_scopes} for p in requested
        ],
        vehicles=[
            {
                "car": car,
                "brand": brand_name(car.make),
                "checked": car.vehicle_id in checked_vehicles,
            }
            for car in cars
        ],
        single_select=session.single_select,
        error=error,
        grant_url=_url("connect-grant", session),
    )
    return render(request, "vehicle_auth_sandbox/grant.html", context, status=400 if error else 200)


@_screen
@require_http_methods(["GET", "HEAD", "POST"])
def grant(request: HttpRequest, key: str) -> HttpResponse:
    """The grant screen: permissions (optional ones may be unticked), cars, Allow or Deny."""
    session = _load(key)
    if not session.email:
        return redirect(_url("connect-login" if session.make else "connect-brands", session))
    if request.method != "POST":
        return _render_grant(request, session)
    form = _form_data(request)
    action = _param(form, "action")
    if action == "deny":
        return _end(session, _error_query("access_denied"))
    if action != "allow":
        raise InvalidRequest("The form must be sent with its Allow or Deny access button.")

    requested = permissions.parse_scopes(session.scopes)
    ticked_scopes = set(_params(form, "scope"))
    not_requested = ticked_scopes - {p.name for p in requested}
    if not_requested:
        raise InvalidRequest(
            f"Permission(s) not requested by the application: {', '.join(sorted(not_requested))}."
        )
    cars = _offered_vehicles(session)
    ticked_vehicles = set(_params(form, "vehicle"))
    unknown_vehicles = ticked_vehicles - {car.vehicle_id for car in cars}
    if unknown_vehicles:
        raise InvalidRequest("The form names a vehicle that is not in this account.")
    chosen = [car for car in cars if car.vehicle_id in ticked_vehicles]
    error = ""
    if not chosen:
        error = "Choose at least one vehicle to share."
    elif session.single_select and len(chosen) > 1:
        error = "Choose only one vehicle."
    if error:
        return _render_grant(
            request,
            session,
            checked_scopes=ticked_scopes,
            checked_vehicles=ticked_vehicles,
            error=error,
        )
    # Required permissions are granted whatever the form says (their boxes are disabled).
    granted = [p.name for p in requested if p.required or p.name in ticked_scopes]
    return _allow(session, granted, chosen)


@_screen
@require_POST
def exit_connect(request: HttpRequest, key: str) -> HttpResponse:
    """The "Exit" button of every screen: back to the application, nothing granted."""
    return _end(_load(key), _error_query("user_manually_returned_to_application"))
