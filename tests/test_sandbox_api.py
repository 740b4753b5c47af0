"""The sandbox's vehicle API v2.0, driven by the real smartcar SDK over HTTP (SMARTCAR.md §4)."""

from __future__ import annotations

import uuid

import pytest
import requests
import smartcar
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from vehicle_auth.sandbox import control, data, grants
from vehicle_auth.sandbox.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)

V2_ERROR_KEYS = {
    "type",
    "code",
    "description",
    "docURL",
    "statusCode",
    "requestId",
    "resolution",
}
SIXTY = "60-vehicles@smartcar.com"


def _raises(call) -> smartcar.SmartcarException:  # type: ignore[no-untyped-def]
    with pytest.raises(smartcar.SmartcarException) as info:
        call()
    return info.value


def _vehicle(access, vehicle_id: str, **options: str) -> smartcar.Vehicle:  # type: ignore[no-untyped-def]
    return smartcar.Vehicle(vehicle_id, access.access_token, options or None)


def _first_car(email: str = "owner@example.com", make: str = "CHEVROLET") -> data.FakeVehicle:
    return data.vehicles_for(email, make)[0]


def _get(sandbox, path: str, token: str | None, **headers: str) -> requests.Response:  # type: ignore[no-untyped-def]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{sandbox.url}/v2.0/{path}", headers=headers, timeout=10)


# --- the calls ----------------------------------------------------------------------------


def test_user_is_the_smartcar_user_behind_the_token(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(email="owner@example.com")
    user = smartcar.get_user(access.access_token)
    assert user.id == data.user_id_for("owner@example.com")
    assert uuid.UUID(user.meta.request_id)


def test_vehicles_lists_the_granted_cars(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    result = smartcar.get_vehicles(access.access_token)
    assert result.vehicles == [_first_car().vehicle_id]
    assert (result.paging.count, result.paging.offset) == (1, 0)
    assert uuid.UUID(result.meta.request_id)


def test_vehicles_beyond_the_last_page_is_empty(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    result = smartcar.get_vehicles(access.access_token, {"limit": 1, "offset": 1})
    assert result.vehicles == []
    assert (result.paging.count, result.paging.offset) == (1, 1)


def test_paging_over_sixty_vehicles(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(email=SIXTY)
    expected = [car.vehicle_id for car in data.vehicles_for(SIXTY, "CHEVROLET")]
    first = smartcar.get_vehicles(access.access_token, {"limit": 50})
    rest = smartcar.get_vehicles(access.access_token, {"limit": 50, "offset": 50})
    default = smartcar.get_vehicles(access.access_token)
    assert (len(first.vehicles), first.paging.count, first.paging.offset) == (50, 60, 0)
    assert (len(rest.vehicles), rest.paging.count, rest.paging.offset) == (10, 60, 50)
    assert first.vehicles + rest.vehicles == expected
    assert default.vehicles == expected[:10]


@pytest.mark.parametrize(
    "paging",
    [
        {"limit": 51},
        {"limit": 0},
        {"limit": -1},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "1.5"},
        {"limit": "٣"},
        {"offset": "9" * 5000},
    ],
)
def test_bad_paging_is_a_validation_error(smartcar_sandbox, paging) -> None:
    access = smartcar_sandbox.authorize()
    error = _raises(lambda: smartcar.get_vehicles(access.access_token, paging))
    assert (error.status_code, error.type, error.code) == (400, "VALIDATION", "PARAMETER")
    assert "must be an integer" in error.description


def test_attributes_with_data_headers(smartcar_sandbox) -> None:
    car = _first_car("tesla-owner@example.com", "TESLA")
    access = smartcar_sandbox.authorize(email="tesla-owner@example.com", make="TESLA")
    attributes = _vehicle(access, car.vehicle_id).attributes()
    assert (attributes.id, attributes.make, attributes.model) == (
        car.vehicle_id,
        "TESLA",
        "Model S",
    )
    assert attributes.year == car.year
    assert isinstance(attributes.year, int)
    assert attributes.meta.unit_system == "metric"
    assert attributes.meta.data_age.endswith("Z")
    assert attributes.meta.fetched_at.endswith("Z")
    assert uuid.UUID(attributes.meta.request_id)


def test_vin(smartcar_sandbox) -> None:
    car = _first_car()
    access = smartcar_sandbox.authorize()
    vin = _vehicle(access, car.vehicle_id).vin()
    assert vin.vin == car.vin
    assert len(vin.vin) == 17


def test_odometer_in_either_unit_system(smartcar_sandbox) -> None:
    car = _first_car()
    access = smartcar_sandbox.authorize()
    metric = _vehicle(access, car.vehicle_id).odometer()
    imperial = _vehicle(access, car.vehicle_id, unit_system="imperial").odometer()
    assert metric.distance == round(car.odometer, 2)
    assert imperial.distance == round(car.odometer / 1.609344, 2)
    assert (metric.meta.unit_system, imperial.meta.unit_system) == ("metric", "imperial")


def test_unknown_unit_system_is_a_validation_error(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    error = _raises(
        lambda: _vehicle(access, _first_car().vehicle_id, unit_system="furlongs").odometer()
    )
    assert (error.status_code, error.type) == (400, "VALIDATION")


def test_permissions_are_the_granted_scopes_without_prefix(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(scopes=["required:read_vin", "read_odometer"])
    vehicle = _vehicle(access, _first_car().vehicle_id)
    everything = vehicle.permissions()
    assert everything.permissions == ["read_vin", "read_odometer"]
    assert (everything.paging.count, everything.paging.offset) == (2, 0)
    page = vehicle.permissions({"limit": 1, "offset": 1})
    assert page.permissions == ["read_odometer"]
    assert (page.paging.count, page.paging.offset) == (2, 1)


def test_disconnect_removes_only_that_car(smartcar_sandbox) -> None:
    email = "2-vehicles@smartcar.com"
    gone, kept = data.vehicles_for(email, "CHEVROLET")
    access = smartcar_sandbox.authorize(email=email)
    status = _vehicle(access, gone.vehicle_id).disconnect()
    assert status.status == "success"
    assert uuid.UUID(status.meta.request_id)
    assert smartcar.get_vehicles(access.access_token).vehicles == [kept.vehicle_id]
    error = _raises(lambda: _vehicle(access, gone.vehicle_id).attributes())
    assert (error.status_code, error.type, error.code) == (404, "RESOURCE_NOT_FOUND", "PATH")
    # The same token still reaches the other car.
    assert _vehicle(access, kept.vehicle_id).vin().vin == kept.vin


def test_disconnect_is_per_grant(smartcar_sandbox) -> None:
    first = smartcar_sandbox.authorize()
    second = smartcar_sandbox.authorize()
    car = _first_car().vehicle_id
    _vehicle(first, car).disconnect()
    assert _vehicle(second, car).vin().vin == _first_car().vin


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "call"),
    [
        (["read_vin", "read_odometer"], "attributes"),
        (["read_vehicle_info", "read_odometer"], "vin"),
        (["read_vehicle_info", "read_vin"], "odometer"),
    ],
)
def test_ungranted_scope_is_a_permission_error(smartcar_sandbox, scopes, call) -> None:
    access = smartcar_sandbox.authorize(scopes=scopes)
    vehicle = _vehicle(access, _first_car().vehicle_id)
    error = _raises(getattr(vehicle, call))
    assert (error.status_code, error.type, error.code) == (403, "PERMISSION", None)
    assert error.resolution == {"type": "REAUTHENTICATE", "url": None}
    assert error.doc_url == "https://smartcar.com/docs/errors/api-errors/permission-errors#null"
    assert uuid.UUID(error.request_id)


def test_calls_without_a_permission_work_with_no_scope(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(scopes=[])
    car = _first_car().vehicle_id
    assert smartcar.get_user(access.access_token).id
    assert smartcar.get_vehicles(access.access_token).vehicles == [car]
    assert _vehicle(access, car).permissions().permissions == []
    assert _vehicle(access, car).disconnect().status == "success"


@pytest.mark.parametrize(
    "spoil",
    [control.expire_access_tokens, control.revoke_tokens],
    ids=["expired", "revoked"],
)
def test_dead_access_token_is_an_authentication_error(smartcar_sandbox, spoil) -> None:
    access = smartcar_sandbox.authorize()
    assert smartcar.get_user(access.access_token).id
    spoil()
    error = _raises(lambda: smartcar.get_user(access.access_token))
    assert (error.status_code, error.type, error.code) == (401, "AUTHENTICATION", None)
    assert error.resolution == {"type": None, "url": None}
    assert "authorization header" in error.description
    # A refresh brings a working token back, unless it was revoked too.
    if spoil is control.expire_access_tokens:
        fresh = smartcar_sandbox.auth_client().exchange_refresh_token(access.refresh_token)
        assert smartcar.get_user(fresh.access_token).id


def test_expiry_of_one_user_spares_the_others(smartcar_sandbox) -> None:
    mine = smartcar_sandbox.authorize(email="me@example.com")
    theirs = smartcar_sandbox.authorize(email="them@example.com")
    assert smartcar_sandbox.expire_access_tokens(data.user_id_for("me@example.com")) == 1
    assert smartcar.get_user(theirs.access_token).id == data.user_id_for("them@example.com")
    assert _raises(lambda: smartcar.get_user(mine.access_token)).status_code == 401


def test_short_access_lifetime(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(ACCESS_TOKEN_LIFETIME=0)
    access = smartcar_sandbox.authorize()
    assert access.expires_in == 0
    assert _raises(lambda: smartcar.get_user(access.access_token)).type == "AUTHENTICATION"


@pytest.mark.parametrize("token", [None, "", "not-a-token", str(uuid.uuid4())])
def test_missing_or_unknown_token_is_an_authentication_error(smartcar_sandbox, token) -> None:
    response = _get(smartcar_sandbox, "vehicles", token)
    assert response.status_code == 401
    assert response.json()["type"] == "AUTHENTICATION"


def test_refresh_token_is_not_an_access_token(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    assert _raises(lambda: smartcar.get_user(access.refresh_token)).status_code == 401


def test_car_outside_the_grant_is_not_found(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(email="me@example.com")
    someone_elses = _first_car("them@example.com").vehicle_id
    error = _raises(lambda: _vehicle(access, someone_elses).odometer())
    assert (error.status_code, error.type, error.code) == (404, "RESOURCE_NOT_FOUND", "PATH")


def test_error_bodies_are_complete_and_match_the_header(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize(scopes=["read_vin"])
    car = _first_car().vehicle_id
    for path, status in [
        ("user", 200),
        (f"vehicles/{car}/odometer", 403),
        (f"vehicles/{uuid.uuid4()}/vin", 404),
        (f"vehicles/{car}/battery", 404),
        ("vehicles?limit=500", 400),
    ]:
        response = _get(smartcar_sandbox, path, access.access_token)
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        request_id = response.headers["SC-Request-Id"]
        if status != 200:
            body = response.json()
            assert set(body) >= V2_ERROR_KEYS
            assert body["statusCode"] == status
            assert body["requestId"] == request_id
            assert set(body["resolution"]) == {"type"}
            assert body["docURL"].startswith("https://smartcar.com/docs/errors/")
    response = _get(smartcar_sandbox, "user", None)
    assert response.json()["requestId"] == response.headers["SC-Request-Id"]


def test_unknown_paths_and_versions(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    car = _first_car().vehicle_id
    battery = _raises(lambda: _vehicle(access, car).battery())
    assert (battery.status_code, battery.type, battery.code) == (404, "RESOURCE_NOT_FOUND", "PATH")
    old = _raises(lambda: _vehicle(access, car, version="1.0").odometer())
    assert (old.status_code, old.type, old.code) == (404, "RESOURCE_NOT_FOUND", "VERSION")
    nowhere = _get(smartcar_sandbox, "no/such/thing/", access.access_token)
    assert nowhere.json()["type"] == "RESOURCE_NOT_FOUND"


def test_wrong_method_is_a_405_validation_error(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    car = _first_car().vehicle_id
    headers = {"Authorization": f"Bearer {access.access_token}"}
    for method, path, allowed in [
        ("POST", "user", "GET"),
        ("DELETE", "vehicles", "GET"),
        ("PUT", f"vehicles/{car}/odometer", "GET"),
        ("GET", f"vehicles/{car}/application", "DELETE"),
        ("POST", f"vehicles/{car}/", "GET"),
    ]:
        response = requests.request(
            method, f"{smartcar_sandbox.url}/v2.0/{path}", headers=headers, timeout=10
        )
        assert response.status_code == 405
        assert response.headers["Allow"] == allowed
        body = response.json()
        assert (body["type"], body["statusCode"]) == ("VALIDATION", 405)
        assert body["requestId"] == response.headers["SC-Request-Id"]


def test_trailing_slashes_are_accepted_everywhere(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    car = _first_car().vehicle_id
    for path in [
        "user",
        "vehicles",
        f"vehicles/{car}",
        f"vehicles/{car}/vin",
        f"vehicles/{car}/permissions",
        f"vehicles/{car}/odometer",
    ]:
        for suffix in ("", "/"):
            response = _get(smartcar_sandbox, path + suffix, access.access_token)
            assert response.status_code == 200, path + suffix
    response = requests.delete(
        f"{smartcar_sandbox.url}/v2.0/vehicles/{car}/application/",
        headers={"Authorization": f"Bearer {access.access_token}"},
        timeout=10,
    )
    assert response.json() == {"status": "success"}


def test_every_call_is_logged(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    car = _first_car().vehicle_id
    vehicle = _vehicle(access, car)
    smartcar.get_user(access.access_token)
    smartcar.get_vehicles(access.access_token)
    vehicle.attributes()
    vehicle.vin()
    vehicle.permissions()
    vehicle.odometer()
    vehicle.disconnect()
    _raises(vehicle.odometer)
    logged = list(RequestLog.objects.order_by("pk").values_list("endpoint", "method", "status"))
    assert logged == [
        ("token", "POST", 200),
        ("user", "GET", 200),
        ("vehicles", "GET", 200),
        ("attributes", "GET", 200),
        ("vin", "GET", 200),
        ("permissions", "GET", 200),
        ("odometer", "GET", 200),
        ("disconnect", "DELETE", 200),
        ("odometer", "GET", 404),
    ]
    assert RequestLog.objects.get(endpoint="vin").path == f"/sandbox/v2.0/vehicles/{car}/vin"


# --- malformed requests through Django's test client (a 500 would raise here) --------------


@pytest.fixture
def bearer(db: None) -> dict[str, str]:
    """The Authorization header of a fresh access token of owner@example.com."""
    grant = grants.create_grant(
        client_id="raw",
        user_id=data.user_id_for("owner@example.com"),
        email="owner@example.com",
        mode="test",
        scopes=list(control.DEFAULT_SCOPES),
        vehicles=data.vehicles_for("owner@example.com", "CHEVROLET"),
    )
    token = grants.issue_tokens(grant)["access_token"]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    "path",
    [
        "vehicles/%00/vin",
        "vehicles/%F0%9F%9A%97/odometer",
        "vehicles/" + "a" * 5000 + "/",
        "vehicles/ünïcödé",
        "vehicles/..%2F..%2Fuser/vin",
        "vehicles?limit=%00",
        "vehicles?offset=" + "9" * 100,
        "vehicles?limit=1e3",
        "vehicles/x/y/z/w",
        "%E2%98%83",
    ],
)
def test_malformed_paths_get_v2_errors(bearer, path) -> None:
    response = Client().get(f"/sandbox/v2.0/{path}", **bearer)
    assert response.status_code in (400, 404)
    assert response["Content-Type"] == "application/json"
    assert response.json()["statusCode"] == response.status_code
    assert response.json()["requestId"] == response["SC-Request-Id"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer \x00",
        "Bearer " + "x" * 10_000,
        "Bearer ünï",
        "Basic abc",
        "bearer  ",
        "Bearer a b c",
        "Bearer %00",
    ],
)
def test_malformed_authorization_is_an_authentication_error(db, authorization) -> None:
    response = Client().get("/sandbox/v2.0/user", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert response.json()["type"] == "AUTHENTICATION"


def test_bearer_scheme_is_case_insensitive(bearer) -> None:
    token = bearer["HTTP_AUTHORIZATION"].split()[1]
    response = Client().get("/sandbox/v2.0/user", HTTP_AUTHORIZATION=f"bearer {token}")
    assert response.status_code == 200


def test_odd_methods_and_bodies(bearer) -> None:
    client = Client()
    car = _first_car().vehicle_id
    response = client.generic("PROPFIND-EXTENDED", "/sandbox/v2.0/user", **bearer)
    assert response.status_code == 405
    assert RequestLog.objects.get().method == "PROPFIND-E"
    response = client.delete(
        f"/sandbox/v2.0/vehicles/{car}/application",
        b"\xff" * 1000,
        content_type="application/octet-stream",
        **bearer,
    )
    assert response.json() == {"status": "success"}


def test_data_headers_are_timestamps(bearer) -> None:
    car = _first_car().vehicle_id
    response = Client().get(f"/sandbox/v2.0/vehicles/{car}/odometer", **bearer)
    fetched = response["SC-Fetched-At"]
    assert fetched[:4] == str(timezone.now().year)
    assert response["SC-Data-Age"].endswith("Z")
    assert response["SC-Unit-System"] == "metric"


def test_url_names(db) -> None:
    assert reverse("vehicle_auth_sandbox:api-user") == "/sandbox/v2.0/user"
    assert reverse("vehicle_auth_sandbox:api-vehicles") == "/sandbox/v2.0/vehicles"
    assert reverse("vehicle_auth_sandbox:api-odometer", args=["x"]) == (
        "/sandbox/v2.0/vehicles/x/odometer"
    )
