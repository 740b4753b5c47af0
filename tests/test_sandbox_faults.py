"""Fault injection, the on/off switch, the control API and the pytest fixture of the sandbox."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import smartcar
from django.conf import settings as django_settings
from django.http import HttpResponse

from vehicle_auth.sandbox import control, data, faults, pytest_plugin
from vehicle_auth.sandbox.errors import DEFAULT_CODES
from vehicle_auth.sandbox.models import Fault, RequestLog, RuntimeSetting

pytestmark = pytest.mark.django_db(transaction=True)

# A URLconf without the sandbox (this module is one: see test_fixture_needs_the_sandbox_urls).
urlpatterns: list = []


def _raises(call, exception=smartcar.SmartcarException):  # type: ignore[no-untyped-def]
    with pytest.raises(exception) as info:
        call()
    return info.value


def _car() -> str:
    return data.vehicles_for("owner@example.com", "CHEVROLET")[0].vehicle_id


# --- latency, status, body ----------------------------------------------------------------


def test_latency_delays_but_answers_normally(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    fault = smartcar_sandbox.inject("user", latency=0.01, times=1)
    assert smartcar.get_user(access.access_token).id == data.user_id_for("owner@example.com")
    fault.refresh_from_db()
    assert fault.remaining == 0  # it was applied, to exactly that request
    assert smartcar_sandbox.request_count("user", status=200) == 1


def test_forced_500_has_a_server_error_body(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("vin", status=500)
    error = _raises(lambda: smartcar.Vehicle(_car(), access.access_token).vin())
    assert (error.status_code, error.type, error.code) == (500, "SERVER", "INTERNAL")
    assert error.resolution == {"type": "RETRY_LATER", "url": None}
    assert uuid.UUID(error.request_id)


def test_times_limits_a_fault(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("vehicles", status=502, times=2)
    for _ in range(2):
        error = _raises(lambda: smartcar.get_vehicles(access.access_token))
        assert (error.status_code, error.type) == (502, "UPSTREAM")
    assert smartcar.get_vehicles(access.access_token).paging.count == 1
    assert smartcar_sandbox.request_count("vehicles", status=502) == 2
    assert smartcar_sandbox.request_count("vehicles", status=200) == 1


def test_concurrent_requests_share_out_the_uses_of_a_fault(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", status=503, times=2)

    def status(_: int) -> int:
        try:
            smartcar.get_user(access.access_token)
        except smartcar.SmartcarException as error:
            return error.status_code
        return 200

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(status, range(6)))
    assert sorted(statuses) == [200, 200, 200, 200, 503, 503]


def test_non_json_error_body_becomes_a_bare_sdk_error(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject(
        "user", status=503, body="<html>Service Unavailable</html>", content_type="text/html"
    )
    error = _raises(lambda: smartcar.get_user(access.access_token))
    assert error.status_code == 503
    assert error.message == "<html>Service Unavailable</html>"
    assert getattr(error, "type", None) is None


def test_invalid_json_error_body_is_an_sdk_error(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("odometer", status=500, body="{not json")
    error = _raises(lambda: smartcar.Vehicle(_car(), access.access_token).odometer())
    assert (error.status_code, error.type, error.message) == (500, "SDK_ERROR", "{not json")


def test_rate_limit_with_retry_after(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("odometer", status=429, retry_after=30, times=1)
    error = _raises(lambda: smartcar.Vehicle(_car(), access.access_token).odometer())
    assert (error.status_code, error.type, error.code) == (429, "RATE_LIMIT", "VEHICLE")
    assert error.retry_after == "30"


def test_forced_200_with_missing_keys(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", status=200, body={"unexpected": True}, times=1)
    _raises(lambda: smartcar.get_user(access.access_token), KeyError)
    smartcar_sandbox.inject("token", body={"access_token": "x"}, times=1)
    response = requests.post(smartcar_sandbox.token_url, timeout=10)
    assert (response.status_code, response.json()) == (200, {"access_token": "x"})


def test_forced_200_with_non_json(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("vehicles", status=200, body="<html>oops</html>", times=1)
    _raises(lambda: smartcar.get_vehicles(access.access_token), requests.JSONDecodeError)


def test_2xx_without_body_is_the_usual_answer_under_that_status(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", status=203)
    response = requests.get(
        f"{smartcar_sandbox.url}/v2.0/user",
        headers={"Authorization": f"Bearer {access.access_token}"},
        timeout=10,
    )
    assert response.status_code == 203
    assert response.json() == {"id": data.user_id_for("owner@example.com")}


@pytest.mark.parametrize(
    ("error_type", "error_code", "status", "resolution"),
    [
        ("VEHICLE_STATE", "ASLEEP", 409, "RETRY_LATER"),
        ("CONNECTED_SERVICES_ACCOUNT", "AUTHENTICATION_FAILED", 400, "REAUTHENTICATE"),
        ("COMPATIBILITY", None, 501, None),
        ("BILLING", None, 430, "RETRY_LATER"),
    ],
)
def test_error_type_shorthand(smartcar_sandbox, error_type, error_code, status, resolution) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("odometer", error_type=error_type, error_code=error_code)
    error = _raises(lambda: smartcar.Vehicle(_car(), access.access_token).odometer())
    assert (error.status_code, error.type) == (status, error_type)
    assert error.code == (error_code or DEFAULT_CODES[error_type])
    assert error.resolution["type"] == resolution
    assert error.description


def test_injected_body_carries_the_request_id_of_its_answer(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", error_type="RATE_LIMIT", error_code="SMARTCAR_API")
    headers = {"Authorization": f"Bearer {access.access_token}"}
    first, second = (
        requests.get(f"{smartcar_sandbox.url}/v2.0/user", headers=headers, timeout=10)
        for _ in range(2)
    )
    assert first.json()["requestId"] == first.headers["SC-Request-Id"]
    assert second.json()["requestId"] == second.headers["SC-Request-Id"]
    assert first.json()["requestId"] != second.json()["requestId"]


def test_given_body_is_sent_verbatim(smartcar_sandbox) -> None:
    raw = '{"type": "SERVER",   "requestId": "fixed", "statusCode": 500}'
    smartcar_sandbox.inject("user", status=500, body=raw)
    response = requests.get(f"{smartcar_sandbox.url}/v2.0/user", timeout=10)
    assert response.text == raw
    assert response.headers["SC-Request-Id"]


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [(418, "VALIDATION", None), (503, "SERVER", "INTERNAL"), (404, "RESOURCE_NOT_FOUND", "PATH")],
)
def test_default_v2_body_for_any_status(smartcar_sandbox, status, error_type, code) -> None:
    smartcar_sandbox.inject("vehicles", status=status)
    response = requests.get(f"{smartcar_sandbox.url}/v2.0/vehicles", timeout=10)
    body = response.json()
    assert (response.status_code, body["statusCode"]) == (status, status)
    assert (body["type"], body["code"]) == (error_type, code)


@pytest.mark.parametrize(
    "body", ['[{"requestId": null}]', '{"requestId": null', '{"requestId": null, "a": 1}']
)
def test_only_a_null_request_id_of_a_json_object_is_filled_in(smartcar_sandbox, body) -> None:
    smartcar_sandbox.inject("user", status=500, body=body, content_type="text/plain")
    smartcar_sandbox.inject("vin", status=500, body=body)
    as_text = requests.get(f"{smartcar_sandbox.url}/v2.0/user", timeout=10)
    assert as_text.text == body
    as_json = requests.get(f"{smartcar_sandbox.url}/v2.0/vehicles/x/vin", timeout=10)
    if body.endswith("1}"):
        assert as_json.json() == {"requestId": as_json.headers["SC-Request-Id"], "a": 1}
    else:
        assert as_json.text == body


# --- token endpoint faults ----------------------------------------------------------------


def test_token_fault_has_an_oauth_body(smartcar_sandbox) -> None:
    code = smartcar_sandbox.issue_code()
    smartcar_sandbox.inject("token", status=500, times=1)
    error = _raises(lambda: smartcar_sandbox.auth_client().exchange_code(code))
    assert (error.status_code, error.type) == (500, "server_error")
    assert error.message == "Unexpected server error. Please try again."
    assert smartcar_sandbox.request_count("token", detail="authorization_code", status=500) == 1
    # The code was not used by the failed attempt.
    assert smartcar_sandbox.auth_client().exchange_code(code).token_type == "Bearer"


def test_token_error_type_shorthand(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("token", error_type="invalid_grant", times=1)
    client = smartcar_sandbox.auth_client()
    error = _raises(lambda: client.exchange_refresh_token(access.refresh_token))
    assert (error.status_code, error.type) == (400, "invalid_grant")
    assert error.message == "Invalid or expired refresh token."
    assert client.exchange_refresh_token(access.refresh_token).token_type == "Bearer"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, "invalid_client"),
        (418, "invalid_request"),
        (429, "rate_limit_exceeded"),
        (503, "server_error"),
    ],
)
def test_default_oauth_body_for_any_status(smartcar_sandbox, status, error) -> None:
    smartcar_sandbox.inject("token", status=status)
    response = requests.post(smartcar_sandbox.token_url, timeout=10)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_token_fault_with_html_body_is_a_bare_sdk_error(smartcar_sandbox) -> None:
    smartcar_sandbox.inject("token", status=502, body="Bad Gateway", content_type="text/plain")
    error = _raises(lambda: smartcar_sandbox.authorize())
    assert (error.status_code, error.message) == (502, "Bad Gateway")


# --- hang ---------------------------------------------------------------------------------


def test_hang_is_released_by_clear_faults(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", hang=30)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(smartcar.get_user, access.access_token)
        assert smartcar_sandbox.wait_until_holding(1)
        assert not pending.done()
        smartcar_sandbox.clear_faults()
        error = _raises(lambda: pending.result(timeout=10))
    assert (error.status_code, error.type, error.code) == (504, "UPSTREAM", "NO_RESPONSE")
    assert smartcar_sandbox.request_count("user", status=504) == 1


def test_hang_holds_past_a_client_timeout(smartcar_sandbox) -> None:
    smartcar_sandbox.inject("token", hang=30, status=503)
    with pytest.raises(requests.Timeout):
        requests.post(smartcar_sandbox.token_url, timeout=0.3)
    # The fixture's teardown releases the held request before the database is flushed.


def test_hang_is_capped_by_max_hang(smartcar_sandbox, settings) -> None:
    settings.SMARTCAR_SANDBOX_MAX_HANG = 0.05
    smartcar_sandbox.inject("token", hang=600, status=503, times=1)
    response = requests.post(smartcar_sandbox.token_url, timeout=10)
    assert response.status_code == 503
    assert response.json()["error"] == "server_error"


# --- settings faults and "*" ----------------------------------------------------------------


def test_settings_faults_apply_to_every_request(smartcar_sandbox, settings) -> None:
    access = smartcar_sandbox.authorize()
    settings.SMARTCAR_SANDBOX_FAULTS = {
        "*": {"status": 502},
        "user": {"status": 503, "retry_after": 5, "latency": 0.01},
    }
    user = _raises(lambda: smartcar.get_user(access.access_token))
    assert (user.status_code, user.type, user.retry_after) == (503, "SERVER", "5")
    vin = _raises(lambda: smartcar.Vehicle(_car(), access.access_token).vin())
    assert (vin.status_code, vin.type) == (502, "UPSTREAM")
    settings.SMARTCAR_SANDBOX_FAULTS = {"vehicles": {"status": 200, "body": {"vehicles": []}}}
    _raises(lambda: smartcar.get_vehicles(access.access_token), KeyError)


def test_an_injected_fault_replaces_the_settings_fault(smartcar_sandbox, settings) -> None:
    access = smartcar_sandbox.authorize()
    settings.SMARTCAR_SANDBOX_FAULTS = {"user": {"status": 503}}
    smartcar_sandbox.inject("user", latency=0.001, times=1)
    assert smartcar.get_user(access.access_token).id
    assert _raises(lambda: smartcar.get_user(access.access_token)).status_code == 503


def test_star_fault_hits_every_endpoint_and_endpoint_faults_win(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.inject("*", status=500)
    smartcar_sandbox.inject("vin", status=409)
    vehicle = smartcar.Vehicle(_car(), access.access_token)
    assert _raises(vehicle.vin).status_code == 409
    assert _raises(vehicle.odometer).status_code == 500
    assert _raises(lambda: smartcar_sandbox.auth_client().exchange_refresh_token("x")).type == (
        "server_error"
    )


# --- on/off switch ------------------------------------------------------------------------


def test_disabled_sandbox_is_404_everywhere(smartcar_sandbox, settings) -> None:
    access = smartcar_sandbox.authorize()
    settings.SMARTCAR_SANDBOX_ENABLED = False
    assert requests.post(smartcar_sandbox.token_url, timeout=10).status_code == 404
    error = _raises(lambda: smartcar.get_user(access.access_token))
    assert error.status_code == 404
    assert getattr(error, "type", None) is None  # Django's own 404 page, not a Smartcar body
    assert smartcar_sandbox.request_count() == 1  # only the exchange before switching off
    settings.SMARTCAR_SANDBOX_ENABLED = True
    assert smartcar.get_user(access.access_token).id


# --- control API --------------------------------------------------------------------------


def test_configure_is_case_insensitive_and_none_removes(smartcar_sandbox) -> None:
    control.configure(code_lifetime=5, Rotation_Grace=0.5)
    assert dict(RuntimeSetting.objects.values_list("key", "value")) == {
        "CODE_LIFETIME": 5,
        "ROTATION_GRACE": 0.5,
    }
    control.configure(CODE_LIFETIME=None)
    assert list(RuntimeSetting.objects.values_list("key", flat=True)) == ["ROTATION_GRACE"]


@pytest.mark.parametrize(
    "overrides",
    [{"MAX_HANG": 1}, {"ENABLED": True}, {"CODE_LIFETIME": "10"}, {"CODE_LIFETIME": True}],
)
def test_configure_refuses_other_settings_and_non_numbers(smartcar_sandbox, overrides) -> None:
    with pytest.raises(TypeError):
        control.configure(**overrides)
    assert not RuntimeSetting.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "nope"},
        {"endpoint": "user", "latency": -1},
        {"endpoint": "user", "hang": 0},
        {"endpoint": "user", "status": 99},
        {"endpoint": "user", "times": 0},
        {"endpoint": "user", "retry_after": -5},
        {"endpoint": "*", "error_type": "SERVER"},
        {"endpoint": "user", "error_type": "SERVER", "body": "x"},
    ],
)
def test_inject_refuses_nonsense(smartcar_sandbox, kwargs) -> None:
    with pytest.raises(ValueError, match=r"."):
        control.inject(**kwargs)
    assert not Fault.objects.exists()


def test_inject_stores_what_it_was_given(smartcar_sandbox) -> None:
    fault = control.inject("vin", status=502, body=[1, 2], retry_after=3, times=4)
    stored = Fault.objects.get()
    assert stored.pk == fault.pk
    assert (stored.endpoint, stored.status, json.loads(stored.body)) == ("vin", 502, [1, 2])
    assert (stored.retry_after, stored.remaining) == (3, 4)
    assert control.inject("vin", body=b"raw").body == "raw"


def test_reset_clears_faults_settings_and_log(smartcar_sandbox) -> None:
    smartcar_sandbox.authorize()
    smartcar_sandbox.inject("user", status=500)
    smartcar_sandbox.configure(CODE_LIFETIME=1)
    smartcar_sandbox.reset()
    assert not Fault.objects.exists()
    assert not RuntimeSetting.objects.exists()
    assert smartcar_sandbox.request_count() == 0


def test_issue_code_for_chosen_cars_and_scopes(smartcar_sandbox) -> None:
    cars = data.vehicles_for("5-vehicles@smartcar.com", "TESLA")
    access = smartcar_sandbox.authorize(
        email="5-vehicles@smartcar.com",
        make="TESLA",
        vehicles=[cars[3].vehicle_id, cars[1].vehicle_id],
        scopes=["required:read_odometer"],
    )
    assert smartcar.get_vehicles(access.access_token).vehicles == [
        cars[3].vehicle_id,
        cars[1].vehicle_id,
    ]
    vehicle = smartcar.Vehicle(cars[3].vehicle_id, access.access_token)
    assert vehicle.permissions().permissions == ["read_odometer"]


def test_issue_code_refuses_cars_of_another_account(smartcar_sandbox) -> None:
    with pytest.raises(ValueError, match="Not cars of"):
        smartcar_sandbox.issue_code(vehicles=[str(uuid.uuid4())])


def test_request_count_filters(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    smartcar_sandbox.auth_client().exchange_refresh_token(access.refresh_token)
    _raises(lambda: smartcar.get_user("nope"))
    assert smartcar_sandbox.request_count() == 3
    assert smartcar_sandbox.request_count("token") == 2
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 1
    assert smartcar_sandbox.request_count(status=401) == 1
    assert RequestLog.objects.get(status=401).endpoint == "user"


def test_sandbox_view_refuses_unknown_endpoints() -> None:
    with pytest.raises(ValueError, match="Unknown sandbox endpoint"):
        faults.sandbox_view("nope")


def test_sandbox_view_without_methods_lets_the_view_decide(rf, db) -> None:
    @faults.sandbox_view("connect")
    def screen(request):  # type: ignore[no-untyped-def]
        return HttpResponse(request.method)

    response = screen(rf.put("/"))
    assert response.content == b"PUT"
    assert "SC-Request-Id" not in response
    control.inject("*", status=503)
    assert b"Smartcar Connect error" in screen(rf.get("/")).content


# --- the pytest fixture -------------------------------------------------------------------


def test_fixture_points_settings_and_sdk_at_the_sandbox(smartcar_sandbox, live_server) -> None:
    assert smartcar_sandbox.url == live_server.url + "/sandbox"
    assert smartcar_sandbox.token_url == live_server.url + "/sandbox/oauth/token"
    assert smartcar_sandbox.redirect_uri == live_server.url + "/vehicles/callback/"
    assert smartcar_sandbox.client_id == "sandbox-test-client"
    expected = {
        "SMARTCAR_CLIENT_ID": smartcar_sandbox.client_id,
        "SMARTCAR_CLIENT_SECRET": smartcar_sandbox.client_secret,
        "SMARTCAR_REDIRECT_URI": smartcar_sandbox.redirect_uri,
        "SMARTCAR_CONNECT_ORIGIN": smartcar_sandbox.url,
        "SMARTCAR_AUTH_ORIGIN": smartcar_sandbox.token_url,
        "SMARTCAR_API_ORIGIN": smartcar_sandbox.url,
        "SMARTCAR_SANDBOX_ENABLED": True,
    }
    assert {name: getattr(django_settings, name) for name in expected} == expected
    sdk = {name: getattr(smartcar.config, name) for name in ("CONNECT_ORIGIN", "AUTH_ORIGIN")}
    assert sdk == {
        "CONNECT_ORIGIN": smartcar_sandbox.url,
        "AUTH_ORIGIN": smartcar_sandbox.token_url,
    }
    assert smartcar_sandbox.url == smartcar.config.API_ORIGIN


def test_fixture_needs_the_sandbox_urls(settings) -> None:
    settings.ROOT_URLCONF = __name__
    with pytest.raises(pytest.UsageError, match="not mounted"):
        pytest_plugin._base_path()


def test_fixture_connect_walks_the_screens(smartcar_sandbox) -> None:
    auth_url = smartcar_sandbox.auth_client().get_auth_url(["read_vehicle_info"], {"state": "s1"})
    redirect = smartcar_sandbox.connect(auth_url)
    assert redirect.startswith(smartcar_sandbox.redirect_uri + "?")
    code = requests.utils.urlparse(redirect).query.split("code=")[1].split("&")[0]
    assert smartcar_sandbox.auth_client().exchange_code(code).token_type == "Bearer"
