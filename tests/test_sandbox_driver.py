"""The Connect driver walks the sandbox's screens over real HTTP, from the SDK's own URL."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import smartcar
import smartcar.config

from vehicle_auth.sandbox import data, grants
from vehicle_auth.sandbox.driver import ConnectError, complete_connect
from vehicle_auth.sandbox.models import AuthorizationCode, Fault, Grant

CLIENT_ID = "driver-tests-client"
CLIENT_SECRET = "driver-tests-secret"
REDIRECT_URI = "https://app.example/smartcar/callback"
SCOPES = ["read_vehicle_info", "read_vin", "read_odometer"]


@pytest.fixture
def auth_client(live_server) -> Iterator[smartcar.AuthClient]:
    """The SDK's AuthClient, pointed at the sandbox served by the live server."""
    original = smartcar.config.CONNECT_ORIGIN
    smartcar.config.CONNECT_ORIGIN = live_server.url + "/sandbox"
    try:
        grants.register_application(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], name="Driver tests")
        yield smartcar.AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, mode="test")
    finally:
        smartcar.config.CONNECT_ORIGIN = original


def query_of(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT_URI + "?"), location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {key: values[0] for key, values in query.items()}


def grant_of(location: str) -> Grant:
    return AuthorizationCode.objects.get(code=query_of(location)["code"]).grant


def test_an_approved_trip_returns_a_code_and_the_state(auth_client: smartcar.AuthClient) -> None:
    state = "a b&c=d é€ +/?"
    location = complete_connect(auth_client.get_auth_url(SCOPES, {"state": state}))
    query = query_of(location)
    assert set(query) == {"code", "state"}
    assert query["state"] == state
    grant = grant_of(location)
    assert grant.client_id == CLIENT_ID
    assert grant.email == "owner@example.com"
    assert grant.scopes == SCOPES
    car = data.vehicles_for("owner@example.com", "CHEVROLET")[0]
    assert [(v.vehicle_id, v.model) for v in grant.vehicles.all()] == [(car.vehicle_id, "Volt")]


def test_three_vehicles_picking_two(auth_client: smartcar.AuthClient) -> None:
    email = "3-vehicles@smartcar.com"
    location = complete_connect(
        auth_client.get_auth_url(SCOPES, {"state": "s"}), email=email, vehicles=[0, 2]
    )
    cars = data.vehicles_for(email, "CHEVROLET")
    assert [v.vehicle_id for v in grant_of(location).vehicles.all()] == [
        cars[0].vehicle_id,
        cars[2].vehicle_id,
    ]


def test_a_brand_from_the_list(auth_client: smartcar.AuthClient) -> None:
    location = complete_connect(auth_client.get_auth_url(SCOPES), make="bmw")
    assert "state" not in query_of(location)
    assert {v.make for v in grant_of(location).vehicles.all()} == {"BMW"}


def test_make_bypass_skips_the_brand_list_and_adds_tesla_s_key_url(
    auth_client: smartcar.AuthClient,
) -> None:
    url = auth_client.get_auth_url(SCOPES, {"make_bypass": "TESLA", "state": "s"})
    location = complete_connect(url, make="A BRAND NOT IN THE LIST")
    assert query_of(location)["virtual_key_url"].startswith("https://www.tesla.com/_ak/")
    assert {v.make for v in grant_of(location).vehicles.all()} == {"TESLA"}


def test_single_select_takes_the_index_given(auth_client: smartcar.AuthClient) -> None:
    email = "3-vehicles@smartcar.com"
    url = auth_client.get_auth_url(SCOPES, {"single_select": {"enabled": True}})
    location = complete_connect(url, email=email, vehicles=1)
    cars = data.vehicles_for(email, "CHEVROLET")
    assert [v.vehicle_id for v in grant_of(location).vehicles.all()] == [cars[1].vehicle_id]


def test_single_select_defaults_to_the_first_vehicle(auth_client: smartcar.AuthClient) -> None:
    email = "3-vehicles@smartcar.com"
    url = auth_client.get_auth_url(SCOPES, {"single_select": {"enabled": True}})
    location = complete_connect(url, email=email)
    cars = data.vehicles_for(email, "CHEVROLET")
    assert [v.vehicle_id for v in grant_of(location).vehicles.all()] == [cars[0].vehicle_id]


def test_unticked_scopes_are_not_granted(auth_client: smartcar.AuthClient) -> None:
    url = auth_client.get_auth_url(["required:read_vehicle_info", "read_vin", "read_odometer"])
    location = complete_connect(url, uncheck_scopes=["read_vin"])
    assert grant_of(location).scopes == ["read_vehicle_info", "read_odometer"]


def test_a_required_scope_cannot_be_unticked(auth_client: smartcar.AuthClient) -> None:
    url = auth_client.get_auth_url(["required:read_vehicle_info", "read_vin"])
    with pytest.raises(ConnectError, match="read_vehicle_info is required"):
        complete_connect(url, uncheck_scopes=["required:read_vehicle_info"])
    with pytest.raises(ConnectError, match="does not ask for read_location"):
        complete_connect(url, uncheck_scopes=["read_location"])
    assert not Grant.objects.exists()


def test_deny(auth_client: smartcar.AuthClient) -> None:
    location = complete_connect(auth_client.get_auth_url(SCOPES, {"state": "s"}), approve=False)
    assert query_of(location) == {
        "error": "access_denied",
        "error_description": "User denied access to application.",
        "state": "s",
    }


def test_a_special_email_ends_at_login(auth_client: smartcar.AuthClient) -> None:
    location = complete_connect(
        auth_client.get_auth_url(SCOPES, {"state": "s"}), email=data.INCOMPATIBLE_EMAIL
    )
    query = query_of(location)
    assert query["error"] == "vehicle_incompatible"
    assert query["make"] == "CHEVROLET"
    assert len(query["vin"]) == 17


def test_a_configuration_error_comes_straight_back(auth_client: smartcar.AuthClient) -> None:
    location = complete_connect(auth_client.get_auth_url(["read_mind"], {"state": "s"}))
    query = query_of(location)
    assert query["error"] == "configuration_error"
    assert "read_mind" in query["error_message"]


def test_an_injected_fault(auth_client: smartcar.AuthClient) -> None:
    Fault.objects.create(endpoint="connect", body="server_error", remaining=1)
    url = auth_client.get_auth_url(SCOPES, {"state": "s"})
    assert query_of(complete_connect(url))["error"] == "server_error"
    assert "code" in query_of(complete_connect(url))


def test_approval_prompt_auto_skips_the_grant_screen_the_second_time(
    auth_client: smartcar.AuthClient,
) -> None:
    url = auth_client.get_auth_url(SCOPES)
    first = grant_of(complete_connect(url, email="3-vehicles@smartcar.com", vehicles=[1]))
    # The second trip never reaches the grant screen, so its answers do not matter.
    second = grant_of(complete_connect(url, email="3-vehicles@smartcar.com", vehicles=[0, 2]))
    assert [v.vehicle_id for v in second.vehicles.all()] == [
        v.vehicle_id for v in first.vehicles.all()
    ]
    forced = auth_client.get_auth_url(SCOPES, {"force_prompt": True})
    third = grant_of(complete_connect(forced, email="3-vehicles@smartcar.com", vehicles=[0, 2]))
    assert third.vehicles.count() == 2


def test_an_error_page_raises(auth_client: smartcar.AuthClient) -> None:
    stranger = smartcar.AuthClient("unknown-client", "x", REDIRECT_URI, mode="test")
    with pytest.raises(ConnectError, match="No application is registered") as caught:
        complete_connect(stranger.get_auth_url(SCOPES))
    assert caught.value.status_code == 400


def test_a_form_error_raises(auth_client: smartcar.AuthClient) -> None:
    url = auth_client.get_auth_url(SCOPES)
    with pytest.raises(ConnectError, match="Choose at least one vehicle"):
        complete_connect(url, vehicles=[])
    with pytest.raises(ConnectError, match="Enter your email and password"):
        complete_connect(url, password="")
    with pytest.raises(ConnectError, match="no vehicle at index 3"):
        complete_connect(url, email="3-vehicles@smartcar.com", vehicles=[0, 3])
    with pytest.raises(ConnectError, match="has no ZEPPELIN"):
        complete_connect(url, make="zeppelin")
    assert not Grant.objects.exists()


def test_the_given_requests_session_is_used(auth_client: smartcar.AuthClient) -> None:
    class CountingSession(requests.Session):
        calls = 0

        def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            return super().request(*args, **kwargs)

    http = CountingSession()
    location = complete_connect(auth_client.get_auth_url(SCOPES), session=http)
    assert "code" in query_of(location)
    # authorize, brands, login form, login post, grant screen, allow
    assert http.calls == 6
