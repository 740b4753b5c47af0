"""The sandbox's Connect screens, driven with Django's test client."""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from vehicle_auth.sandbox import data, grants
from vehicle_auth.sandbox.connect import ERROR_DESCRIPTIONS, TESLA_VIRTUAL_KEY_URL
from vehicle_auth.sandbox.models import AuthorizationCode, ConnectSession, Fault, Grant

CLIENT_ID = "connect-tests-client"
REDIRECT_URI = "https://app.example/smartcar/callback"
APP_NAME = "Charge Buddy"
EMAIL = "owner@example.com"


@pytest.fixture(autouse=True)
def application(db: None) -> None:
    grants.register_application(
        CLIENT_ID,
        "connect-tests-secret",
        [REDIRECT_URI, "https://app.example/cb?tenant=7", "sc-charge-buddy://exchange"],
        name=APP_NAME,
    )


def authorize_url(**overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "read_vehicle_info read_odometer",
        "mode": "test",
        "approval_prompt": "auto",
        "state": "state-1",
    }
    params.update(overrides)
    return "/sandbox/oauth/authorize?" + urlencode(
        {key: value for key, value in params.items() if value is not None}
    )


def screen(name: str, session: ConnectSession) -> str:
    return reverse(f"vehicle_auth_sandbox:{name}", args=[session.key])


def start(client: Client, **overrides: str | None) -> ConnectSession:
    response = client.get(authorize_url(**overrides))
    assert response.status_code == 200, response.content
    return ConnectSession.objects.latest("pk")


def sign_in(client: Client, session: ConnectSession, email: str = EMAIL, make: str = "CHEVROLET"):
    return client.post(
        screen("connect-login", session), {"make": make, "username": email, "password": "pw"}
    )


def signed_in(client: Client, email: str = EMAIL, **overrides: str | None) -> ConnectSession:
    session = start(client, **overrides)
    response = sign_in(client, session, email, overrides.get("make") or "CHEVROLET")
    assert response.status_code == 302
    assert response["Location"] == screen("connect-grant", session)
    return session


def back_to_app(response, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The query of a redirect to the application; each parameter appears once."""
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?"))
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {key: values[0] for key, values in query.items()}


def allow(client: Client, session: ConnectSession, **form: object):
    return client.post(screen("connect-grant", session), {"action": "allow", **form})


class Elements(HTMLParser):
    """Every element of a page as (tag, attributes), and the ones with an id by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.all: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.all.append((tag, {name: value or "" for name, value in attrs}))

    @property
    def by_id(self) -> dict[str, tuple[str, dict[str, str]]]:
        return {attrs["id"]: (tag, attrs) for tag, attrs in self.all if "id" in attrs}

    def inputs(self, name: str) -> list[dict[str, str]]:
        return [a for tag, a in self.all if tag == "input" and a.get("name") == name]


def text(response) -> str:
    return unescape(response.content.decode())


def elements(response) -> Elements:
    return Elements(response.content.decode())


# --- /oauth/authorize --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": None}, "client_id parameter is missing"),
        ({"client_id": "nobody"}, "No application is registered with client_id"),
        ({"redirect_uri": None}, "redirect_uri parameter is missing"),
        ({"redirect_uri": "https://evil.example/cb"}, "is not registered for this application"),
        ({"redirect_uri": REDIRECT_URI + "/"}, "is not registered for this application"),
        ({"response_type": "token"}, "response_type must be"),
        ({"response_type": None}, "response_type must be"),
        ({"mode": "production"}, "mode must be one of"),
        ({"approval_prompt": "sometimes"}, "approval_prompt must be"),
        ({"single_select": "yes"}, "single_select must be"),
        ({"single_select_vin": "SHORT"}, "single_select_vin must be a 17-character VIN"),
        ({"state": "x" * 5000}, "too long"),
        ({"state": "a\x00b"}, "NUL character"),
        ({"client_id": "é" * 200}, "No application is registered"),
    ],
)
def test_an_invalid_request_shows_an_error_page_and_never_redirects(
    client: Client, overrides: dict[str, str | None], message: str
) -> None:
    response = client.get(authorize_url(**overrides))
    assert response.status_code == 400
    assert not response.has_header("Location")
    assert message in text(response)
    assert elements(response).by_id["error-message"][1]["role"] == "alert"
    assert not ConnectSession.objects.exists()


def test_a_repeated_parameter_is_refused(client: Client) -> None:
    response = client.get(authorize_url() + "&client_id=" + CLIENT_ID)
    assert response.status_code == 400
    assert "'client_id' was given 2 times" in text(response)
    assert not ConnectSession.objects.exists()


def test_a_valid_request_opens_a_session_with_every_parameter(client: Client) -> None:
    vin = "1G1RC6E45FU000001"
    session = start(
        client,
        scope="required:read_vehicle_info read_odometer",
        make="tesla",
        single_select_vin=vin.lower(),
        approval_prompt="force",
        flags="country:DE foo:true",
        user="site-user-42",
        state="s",
    )
    assert len(session.key) >= 32
    assert session.client_id == CLIENT_ID
    assert session.redirect_uri == REDIRECT_URI
    assert session.scopes == ["required:read_vehicle_info", "read_odometer"]
    assert session.mode == "test"
    assert session.state == "s"
    assert session.approval_prompt == "force"
    assert session.make == "TESLA"
    assert session.single_select is True
    assert session.single_select_vin == vin
    assert session.flags == "country:DE foo:true"
    assert session.user_hint == "site-user-42"
    assert session.finished_at is None


def test_session_keys_are_unguessable(client: Client) -> None:
    first, second = start(client), start(client)
    assert first.key != second.key


# --- screens -----------------------------------------------------------------------------


def test_preamble_names_the_app_and_continues_to_the_brand_list(client: Client) -> None:
    response = client.get(authorize_url())
    session = ConnectSession.objects.get()
    page = elements(response)
    assert APP_NAME in text(response)
    assert page.by_id["continue-button"][0] == "button"
    assert ("main", {"class": "page-content", "data-screen": "preamble"}) in page.all
    form = next(a for tag, a in page.all if tag == "form" and a.get("method") == "get")
    assert form["action"] == screen("connect-brands", session)
    assert page.by_id["exit-button"][0] == "button"
    # The first screen is also served at its own URL (the back button).
    assert "continue-button" in elements(client.get(screen("connect-preamble", session))).by_id


def test_brand_list_has_one_button_per_make(client: Client) -> None:
    session = start(client)
    response = client.get(screen("connect-brands", session))
    page = elements(response)
    for make in data.MAKES:
        tag, attrs = page.by_id[make]
        assert tag == "button"
        assert "brand-list-item" in attrs["class"].split()
        assert (attrs["name"], attrs["value"]) == ("make", make)
    assert page.by_id["brand-search"][1]["name"] == "q"
    assert APP_NAME in text(response)
    assert "exit-button" in page.by_id


def test_brand_search_filters_on_the_server(client: Client) -> None:
    session = start(client)
    page = elements(client.get(screen("connect-brands", session), {"q": " chev "}))
    assert [a["id"] for t, a in page.all if "brand-list-item" in a.get("class", "")] == [
        "CHEVROLET"
    ]
    assert page.by_id["brand-search"][1]["value"] == "chev"
    nothing = client.get(screen("connect-brands", session), {"q": "zeppelin"})
    assert nothing.status_code == 200
    assert "No brand matches" in text(nothing)
    assert not any("brand-list-item" in a.get("class", "") for t, a in elements(nothing).all)


def test_choosing_a_brand_opens_its_login(client: Client) -> None:
    session = start(client)
    response = client.get(screen("connect-login", session), {"make": "CHEVROLET"})
    page = elements(response)
    assert response.status_code == 200
    assert "Sign in to Chevrolet" in text(response)
    assert page.by_id["username"][0] == "input"
    assert page.by_id["password"][1]["type"] == "password"
    assert page.by_id["sign-in-button"][0] == "button"
    assert page.inputs("make")[0]["value"] == "CHEVROLET"
    assert "Test mode: any email and password are accepted." in text(response)


def test_make_skips_the_brand_list(client: Client) -> None:
    response = client.get(authorize_url(make="TESLA"))
    session = ConnectSession.objects.get()
    form = next(a for tag, a in elements(response).all if tag == "form" and a["method"] == "get")
    assert form["action"] == screen("connect-login", session)
    assert client.get(screen("connect-brands", session))["Location"] == form["action"]
    login = client.get(screen("connect-login", session))
    assert "Sign in to Tesla" in text(login)
    # The brand is the one in the URL, whatever the form says.
    assert sign_in(client, session, make="AUDI").status_code == 302
    session.refresh_from_db()
    assert session.chosen_make == "TESLA"


def test_an_unknown_make_falls_back_to_the_brand_list(client: Client) -> None:
    session = start(client, make="DELOREAN")
    assert session.make == ""
    assert client.get(screen("connect-brands", session)).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"), [("", "pw"), ("owner@example.com", ""), ("   ", "pw")]
)
def test_login_needs_an_email_and_a_password(client: Client, username: str, password: str) -> None:
    session = start(client)
    response = client.post(
        screen("connect-login", session),
        {"make": "CHEVROLET", "username": username, "password": password},
    )
    assert response.status_code == 400
    assert "Enter your email and password." in text(response)
    assert "sign-in-button" in elements(response).by_id
    session.refresh_from_db()
    assert session.email == ""


def test_login_refuses_an_unknown_brand_and_a_repeated_field(client: Client) -> None:
    session = start(client)
    unknown = sign_in(client, session, make="ZEPPELIN")
    assert unknown.status_code == 400
    assert "Unknown brand" in text(unknown)
    repeated = client.post(
        screen("connect-login", session),
        "make=BMW&username=a%40b.c&username=d%40e.f&password=pw",
        content_type="application/x-www-form-urlencoded",
    )
    assert repeated.status_code == 400
    assert "'username' was given 2 times" in text(repeated)
    too_long = sign_in(client, session, email="a" * 300 + "@example.com")
    assert too_long.status_code == 400
    assert "too long" in text(too_long)


def test_login_without_a_brand_goes_back_to_the_brand_list(client: Client) -> None:
    session = start(client)
    response = client.get(screen("connect-login", session))
    assert response["Location"] == screen("connect-brands", session)


def test_live_mode_login_accepts_anything_but_says_it_is_the_sandbox(client: Client) -> None:
    session = start(client, mode="live")
    login = client.get(screen("connect-login", session), {"make": "BMW"})
    assert "This is the sandbox, not BMW" in text(login)
    assert sign_in(client, session, make="BMW").status_code == 302


def test_the_grant_screen_lists_permissions_in_plain_words_and_the_cars(client: Client) -> None:
    session = signed_in(client, scope="read_vehicle_info read_vin read_odometer")
    response = client.get(screen("connect-grant", session))
    body = text(response)
    page = elements(response)
    assert ("main", {"class": "page-content", "data-screen": "grant"}) in page.all
    for words in ("Know make, model, and year", "Read VIN", "Retrieve total distance traveled"):
        assert words in body
    assert page.by_id["approval-button"][1]["value"] == "allow"
    assert page.by_id["deny-button"][1]["value"] == "deny"
    assert "Deny access" in body
    assert APP_NAME in body
    assert "exit-button" in page.by_id
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    [vehicle] = page.inputs("vehicle")
    assert (vehicle["type"], vehicle["value"]) == ("checkbox", car.vehicle_id)
    assert "checked" in vehicle
    assert f"{car.year} Chevrolet Volt" in body


def test_the_grant_screen_needs_a_signed_in_owner(client: Client) -> None:
    session = start(client)
    assert client.get(screen("connect-grant", session))["Location"] == screen(
        "connect-brands", session
    )
    assert allow(client, session)["Location"] == screen("connect-brands", session)
    assert ConnectSession.objects.get().finished_at is None


# --- outcomes ----------------------------------------------------------------------------


def test_allow_issues_a_code_for_a_new_grant(client: Client) -> None:
    session = signed_in(client)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    response = allow(
        client, session, scope=["read_vehicle_info", "read_odometer"], vehicle=[car.vehicle_id]
    )
    query = back_to_app(response)
    assert set(query) == {"code", "state"}
    assert query["state"] == "state-1"
    code = AuthorizationCode.objects.get(code=query["code"])
    assert code.redirect_uri == REDIRECT_URI
    grant = code.grant
    assert grant.client_id == CLIENT_ID
    assert grant.user_id == data.user_id_for(EMAIL)
    assert grant.email == EMAIL
    assert grant.mode == "test"
    assert grant.scopes == ["read_vehicle_info", "read_odometer"]
    assert [(v.vehicle_id, v.vin, v.model) for v in grant.vehicles.all()] == [
        (car.vehicle_id, car.vin, "Volt")
    ]


def test_allow_with_no_vehicle_ticked_asks_for_one(client: Client) -> None:
    session = signed_in(client)
    response = allow(client, session, scope=["read_odometer"])
    assert response.status_code == 400
    assert "Choose at least one vehicle" in text(response)
    page = elements(response)
    assert "checked" not in page.inputs("vehicle")[0]
    assert "checked" in page.by_id["scope-read_odometer"][1]
    assert not Grant.objects.exists()
    session.refresh_from_db()
    assert session.finished_at is None


def test_unticking_an_optional_permission_leaves_it_out_of_the_grant(client: Client) -> None:
    session = signed_in(client, scope="read_vehicle_info read_vin read_odometer")
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    query = back_to_app(
        allow(client, session, scope=["read_vehicle_info", "read_odometer"], vehicle=car.vehicle_id)
    )
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    assert grant.scopes == ["read_vehicle_info", "read_odometer"]


def test_required_permissions_are_locked_and_always_granted(client: Client) -> None:
    session = signed_in(client, scope="required:read_vehicle_info read_vin required:read_odometer")
    page = elements(client.get(screen("connect-grant", session)))
    locked = page.by_id["scope-read_vehicle_info"][1]
    assert "checked" in locked
    assert "disabled" in locked
    optional = page.by_id["scope-read_vin"][1]
    assert "checked" in optional
    assert "disabled" not in optional
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    # A browser never sends disabled boxes: only the vehicle is in the form.
    query = back_to_app(allow(client, session, vehicle=car.vehicle_id))
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    assert grant.scopes == ["read_vehicle_info", "read_odometer"]


def test_deny_sends_access_denied(client: Client) -> None:
    session = signed_in(client)
    query = back_to_app(client.post(screen("connect-grant", session), {"action": "deny"}))
    assert query == {
        "error": "access_denied",
        "error_description": "User denied access to application.",
        "state": "state-1",
    }
    assert not Grant.objects.exists()


@pytest.mark.parametrize("step", ["preamble", "brands", "login", "grant"])
def test_exit_on_any_screen_returns_to_the_application(client: Client, step: str) -> None:
    session = start(client)
    if step == "brands":
        assert "exit-button" in elements(client.get(screen("connect-brands", session))).by_id
    elif step == "login":
        login = client.get(screen("connect-login", session), {"make": "KIA"})
        assert "exit-button" in elements(login).by_id
    elif step == "grant":
        sign_in(client, session)
        assert "exit-button" in elements(client.get(screen("connect-grant", session))).by_id
    query = back_to_app(client.post(screen("connect-exit", session)))
    assert query == {
        "error": "user_manually_returned_to_application",
        "error_description": "The user exited Connect before granting your application access",
        "state": "state-1",
    }


def test_exit_is_a_post(client: Client) -> None:
    session = start(client)
    assert client.get(screen("connect-exit", session)).status_code == 405
    assert ConnectSession.objects.get().finished_at is None


def test_the_incompatible_vehicle_email_names_a_deterministic_car(client: Client) -> None:
    session = start(client)
    query = back_to_app(sign_in(client, session, email="Smartcar@Vehicle-Incompatible.com"))
    car = data.vehicles_for(data.INCOMPATIBLE_EMAIL, "CHEVROLET")[0]
    assert query == {
        "error": "vehicle_incompatible",
        "error_description": "The user's vehicle is not compatible.",
        "vin": car.vin,
        "make": "CHEVROLET",
        "model": car.model,
        "year": str(car.year),
        "state": "state-1",
    }


def test_the_invalid_subscription_email(client: Client) -> None:
    session = start(client)
    query = back_to_app(sign_in(client, session, email=data.INVALID_SUBSCRIPTION_EMAIL))
    assert query["error"] == "invalid_subscription"
    assert query["error_description"] == (
        "User does not have an active connected vehicle subscription"
    )


def test_an_account_without_vehicles(client: Client) -> None:
    session = start(client)
    query = back_to_app(sign_in(client, session, email="0-vehicles@smartcar.com"))
    assert query["error"] == "no_vehicles"
    assert query["error_description"] == (
        "No vehicles found. Please add vehicles to your account and try again."
    )


def test_an_account_with_three_vehicles_shares_the_ticked_ones(client: Client) -> None:
    email = "3-vehicles@smartcar.com"
    session = signed_in(client, email)
    cars = data.vehicles_for(email, "CHEVROLET")
    page = elements(client.get(screen("connect-grant", session)))
    assert [box["value"] for box in page.inputs("vehicle")] == [c.vehicle_id for c in cars]
    assert all("checked" in box for box in page.inputs("vehicle"))
    query = back_to_app(allow(client, session, vehicle=[cars[2].vehicle_id, cars[0].vehicle_id]))
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    # In the account's order, whatever the form's order.
    assert [v.vehicle_id for v in grant.vehicles.all()] == [cars[0].vehicle_id, cars[2].vehicle_id]


def test_an_account_with_999_vehicles_can_share_them_all(client: Client) -> None:
    email = "999-vehicles@smartcar.com"
    session = signed_in(client, email)
    page = elements(client.get(screen("connect-grant", session)))
    boxes = page.inputs("vehicle")
    assert len(boxes) == 999
    form = urlencode(
        [("action", "allow"), ("scope", "read_odometer")] + [("vehicle", b["value"]) for b in boxes]
    )
    response = client.post(
        screen("connect-grant", session), form, content_type="application/x-www-form-urlencoded"
    )
    grant = AuthorizationCode.objects.get(code=back_to_app(response)["code"]).grant
    assert grant.vehicles.count() == 999


def test_single_select_offers_radio_buttons_and_takes_one_car(client: Client) -> None:
    email = "2-vehicles@smartcar.com"
    session = signed_in(client, email, single_select="true")
    boxes = elements(client.get(screen("connect-grant", session))).inputs("vehicle")
    assert [box["type"] for box in boxes] == ["radio", "radio"]
    assert ["checked" in box for box in boxes] == [True, False]
    both = allow(client, session, vehicle=[b["value"] for b in boxes])
    assert both.status_code == 400
    assert "Choose only one vehicle." in text(both)
    query = back_to_app(allow(client, session, vehicle=boxes[1]["value"]))
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    assert [v.vehicle_id for v in grant.vehicles.all()] == [boxes[1]["value"]]


def test_single_select_vin_offers_only_that_car(client: Client) -> None:
    email = "5-vehicles@smartcar.com"
    wanted = data.vehicles_for(email, "CHEVROLET")[3]
    session = signed_in(client, email, single_select_vin=wanted.vin)
    boxes = elements(client.get(screen("connect-grant", session))).inputs("vehicle")
    assert [(box["type"], box["value"]) for box in boxes] == [("radio", wanted.vehicle_id)]
    other = data.vehicles_for(email, "CHEVROLET")[0]
    assert allow(client, session, vehicle=other.vehicle_id).status_code == 400
    query = back_to_app(allow(client, session, vehicle=wanted.vehicle_id))
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    assert [v.vin for v in grant.vehicles.all()] == [wanted.vin]


def test_single_select_vin_without_a_match_ends_in_no_vehicles(client: Client) -> None:
    session = start(client, single_select_vin="1G1RC6E45FU000001")
    assert back_to_app(sign_in(client, session))["error"] == "no_vehicles"


def test_tesla_adds_a_virtual_key_url(client: Client) -> None:
    session = signed_in(client, make="TESLA")
    car = data.vehicles_for(EMAIL, "TESLA")[0]
    query = back_to_app(allow(client, session, vehicle=car.vehicle_id))
    assert query["virtual_key_url"] == TESLA_VIRTUAL_KEY_URL
    assert set(query) == {"code", "state", "virtual_key_url"}


@pytest.mark.parametrize(
    ("scope", "named"),
    [
        ("read_vehicle_info read_mind", "read_mind"),
        ("required:read_everything read_vin", "required:read_everything"),
        ("READ_VIN", "READ_VIN"),
    ],
)
def test_an_unknown_permission_is_a_configuration_error(
    client: Client, scope: str, named: str
) -> None:
    query = back_to_app(client.get(authorize_url(scope=scope)))
    assert query["error"] == "configuration_error"
    assert query["error_description"] == (
        "There has been an error in the configuration of your application."
    )
    assert query["status_code"] == "400"
    assert named in query["error_message"]
    assert query["state"] == "state-1"
    assert not ConnectSession.objects.exists()


def test_no_permission_at_all_is_a_configuration_error(client: Client) -> None:
    query = back_to_app(client.get(authorize_url(scope=None)))
    assert query["error"] == "configuration_error"
    assert "scope" in query["error_message"]


def test_validation_of_client_and_redirect_comes_before_the_configuration_error(
    client: Client,
) -> None:
    response = client.get(authorize_url(scope="read_mind", redirect_uri="https://evil.example/"))
    assert response.status_code == 400
    assert not response.has_header("Location")


def test_a_connect_fault_turns_allow_into_its_error(client: Client) -> None:
    Fault.objects.create(endpoint="connect", body="server_error", remaining=2)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    for remaining in (1, None):
        session = signed_in(client)
        query = back_to_app(allow(client, session, vehicle=car.vehicle_id))
        assert query == {
            "error": "server_error",
            "error_description": ERROR_DESCRIPTIONS["server_error"],
            "state": "state-1",
        }
        fault = Fault.objects.filter(endpoint="connect").first()
        assert (fault.remaining if fault else None) == remaining
    assert not Fault.objects.exists()
    assert not Grant.objects.exists()
    session = signed_in(client)
    assert "code" in back_to_app(allow(client, session, vehicle=car.vehicle_id))


def test_a_connect_fault_may_carry_a_whole_error_query(client: Client) -> None:
    Fault.objects.create(endpoint="connect", body="error=vehicle_incompatible&make=TESLA")
    Fault.objects.create(endpoint="token", body="server_error")  # another endpoint's fault
    session = signed_in(client)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    query = back_to_app(allow(client, session, vehicle=car.vehicle_id))
    assert query == {
        "error": "vehicle_incompatible",
        "error_description": ERROR_DESCRIPTIONS["vehicle_incompatible"],
        "make": "TESLA",
        "state": "state-1",
    }
    assert Fault.objects.filter(endpoint="connect").count() == 1  # remaining=None: stays


def test_an_undocumented_fault_code_gets_a_generic_description(client: Client) -> None:
    Fault.objects.create(endpoint="connect", body="brand_new_error", remaining=0)
    Fault.objects.create(endpoint="connect", body="brand_new_error", remaining=1)
    session = signed_in(client)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    query = back_to_app(allow(client, session, vehicle=car.vehicle_id))
    assert query["error"] == "brand_new_error"
    assert query["error_description"]
    assert not Fault.objects.exists()


def first_grant(client: Client, scope: str) -> Grant:
    session = signed_in(client, scope=scope)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    query = back_to_app(allow(client, session, scope=scope.split(), vehicle=car.vehicle_id))
    return AuthorizationCode.objects.get(code=query["code"]).grant


def test_approval_prompt_auto_skips_the_grant_screen_for_a_covered_scope(client: Client) -> None:
    earlier = first_grant(client, "read_vehicle_info read_vin read_odometer")
    session = start(client, scope="required:read_vehicle_info read_odometer")
    query = back_to_app(sign_in(client, session))
    grant = AuthorizationCode.objects.get(code=query["code"]).grant
    assert grant.pk != earlier.pk
    assert grant.scopes == ["read_vehicle_info", "read_odometer"]
    assert [v.vehicle_id for v in grant.vehicles.all()] == [
        v.vehicle_id for v in earlier.vehicles.all()
    ]
    assert query["state"] == "state-1"


def test_approval_prompt_auto_shows_the_screen_for_a_wider_scope(client: Client) -> None:
    first_grant(client, "read_vehicle_info")
    session = start(client, scope="read_vehicle_info read_location")
    assert sign_in(client, session)["Location"] == screen("connect-grant", session)


def test_approval_prompt_force_always_shows_the_grant_screen(client: Client) -> None:
    first_grant(client, "read_vehicle_info read_odometer")
    session = start(client, approval_prompt="force")
    assert sign_in(client, session)["Location"] == screen("connect-grant", session)


def test_approval_prompt_auto_does_not_reuse_another_users_grant(client: Client) -> None:
    first_grant(client, "read_vehicle_info read_odometer")
    session = start(client)
    response = sign_in(client, session, email="someone-else@example.com")
    assert response["Location"] == screen("connect-grant", session)


def test_a_finished_session_cannot_be_replayed(client: Client) -> None:
    session = signed_in(client)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    assert "code" in back_to_app(allow(client, session, vehicle=car.vehicle_id))
    for response in (
        client.get(screen("connect-preamble", session)),
        client.get(screen("connect-brands", session)),
        client.get(screen("connect-login", session), {"make": "BMW"}),
        sign_in(client, session),
        client.get(screen("connect-grant", session)),
        allow(client, session, vehicle=car.vehicle_id),
        client.post(screen("connect-exit", session)),
    ):
        assert response.status_code == 400
        assert not response.has_header("Location")
        assert "already ended" in text(response)
    assert Grant.objects.count() == 1


def test_an_unknown_session_key_is_not_found(client: Client) -> None:
    response = client.get("/sandbox/connect/not-a-real-key/brands/")
    assert response.status_code == 404
    assert "does not exist" in text(response)


def test_malformed_grant_forms_get_a_clear_400(client: Client) -> None:
    session = signed_in(client)
    car = data.vehicles_for(EMAIL, "CHEVROLET")[0]
    for form, message in (
        ({"vehicle": car.vehicle_id}, "Allow or Deny"),
        ({"action": "maybe"}, "Allow or Deny"),
        ({"action": "allow", "vehicle": "someone-elses-car"}, "not in this account"),
        ({"action": "allow", "vehicle": car.vehicle_id, "scope": "control_pin"}, "control_pin"),
        ({"action": "allow", "vehicle": "\x00"}, "NUL"),
    ):
        response = client.post(screen("connect-grant", session), form)
        assert response.status_code == 400
        assert message in text(response)
    session.refresh_from_db()
    assert session.finished_at is None


def test_same_email_always_gets_the_same_vehicles(client: Client) -> None:
    ids = []
    for _ in range(2):
        session = signed_in(client, "3-vehicles@smartcar.com", approval_prompt="force")
        boxes = elements(client.get(screen("connect-grant", session))).inputs("vehicle")
        query = back_to_app(allow(client, session, vehicle=[b["value"] for b in boxes]))
        grant = AuthorizationCode.objects.get(code=query["code"]).grant
        ids.append([v.vehicle_id for v in grant.vehicles.all()])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 3


@pytest.mark.parametrize(
    "state", ["a b&c=d", "é€ +%2B/?#", "x" * 4000, "line\nbreak", "=&=&", "  leading"]
)
def test_state_round_trips_exactly(client: Client, state: str) -> None:
    session = signed_in(client, state=state)
    assert session.state == state
    query = back_to_app(client.post(screen("connect-grant", session), {"action": "deny"}))
    assert query["state"] == state


def test_no_state_no_state_parameter(client: Client) -> None:
    session = signed_in(client, state=None)
    query = back_to_app(client.post(screen("connect-grant", session), {"action": "deny"}))
    assert "state" not in query


def test_the_redirect_keeps_the_redirect_uris_own_query_and_custom_scheme(client: Client) -> None:
    with_query = "https://app.example/cb?tenant=7"
    session = signed_in(client, redirect_uri=with_query)
    query = back_to_app(client.post(screen("connect-exit", session)), with_query)
    assert query["tenant"] == "7"
    assert query["error"] == "user_manually_returned_to_application"
    mobile = "sc-charge-buddy://exchange"
    session = signed_in(client, redirect_uri=mobile)
    assert back_to_app(client.post(screen("connect-exit", session)), mobile)["state"] == "state-1"


def test_screens_are_not_found_when_the_sandbox_is_disabled(client: Client, settings) -> None:
    session = start(client)
    settings.SMARTCAR_SANDBOX_ENABLED = False
    assert client.get(authorize_url()).status_code == 404
    for name in ("connect-preamble", "connect-brands", "connect-grant"):
        assert client.get(screen(name, session)).status_code == 404
    assert client.post(screen("connect-exit", session)).status_code == 404
    assert ConnectSession.objects.count() == 1


def test_post_screens_need_no_csrf_token(db: None) -> None:
    browser = Client(enforce_csrf_checks=True)
    session = start(browser)
    assert sign_in(browser, session).status_code == 302
    assert back_to_app(browser.post(screen("connect-grant", session), {"action": "deny"}))


def test_approval_prompt_auto_does_not_reuse_a_grant_for_another_brand(client: Client) -> None:
    first_grant(client, "read_vehicle_info read_odometer")
    session = start(client, make="TESLA")
    assert sign_in(client, session)["Location"] == screen("connect-grant", session)


def test_a_form_with_too_many_fields_is_refused(client: Client) -> None:
    session = signed_in(client)
    form = urlencode([("action", "allow")] + [("vehicle", str(n)) for n in range(3000)])
    response = client.post(
        screen("connect-grant", session), form, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "too many fields" in text(response)
