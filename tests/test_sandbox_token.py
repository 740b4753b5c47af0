"""The sandbox's token endpoint, driven by the real smartcar SDK over HTTP (SMARTCAR.md §3)."""

from __future__ import annotations

import base64
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import smartcar
from django.test import Client
from django.urls import reverse

from vehicle_auth.sandbox import grants
from vehicle_auth.sandbox.models import AuthorizationCode, RequestLog, Token

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token"}


def _oauth_error(call) -> smartcar.SmartcarException:  # type: ignore[no-untyped-def]
    with pytest.raises(smartcar.SmartcarException) as info:
        call()
    return info.value


def _post(sandbox, data, *, auth=None, url=None) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.post(
        url or sandbox.token_url,
        data=data,
        auth=auth if auth is not None else (sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )


# --- authorization code -------------------------------------------------------------------


def test_code_exchange_returns_exactly_the_oauth_fields(smartcar_sandbox) -> None:
    code = smartcar_sandbox.issue_code()
    response = _post(
        smartcar_sandbox,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": smartcar_sandbox.redirect_uri,
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert uuid.UUID(body["access_token"]) != uuid.UUID(body["refresh_token"])


def test_sdk_exchange_code(smartcar_sandbox) -> None:
    access = smartcar_sandbox.auth_client().exchange_code(smartcar_sandbox.issue_code())
    assert access.token_type == "Bearer"
    assert access.expires_in == 7200
    assert Token.objects.filter(token=access.access_token, kind="access").exists()
    assert Token.objects.filter(token=access.refresh_token, kind="refresh").exists()
    assert smartcar_sandbox.request_count("token", detail="authorization_code", status=200) == 1


def test_trailing_slash_and_flags_are_accepted(smartcar_sandbox) -> None:
    smartcar.config.AUTH_ORIGIN = smartcar_sandbox.token_url + "/"
    access = smartcar_sandbox.auth_client().exchange_code(
        smartcar_sandbox.issue_code(), {"flags": {"country": "DE", "beta": True}}
    )
    assert access.token_type == "Bearer"
    log = RequestLog.objects.get(endpoint="token")
    assert log.path.startswith(reverse("vehicle_auth_sandbox:token") + "/?flags=")


def test_configured_access_lifetime_is_announced(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(access_token_lifetime=60)
    access = smartcar_sandbox.authorize()
    assert access.expires_in == 60


def test_code_is_single_use(smartcar_sandbox) -> None:
    client = smartcar_sandbox.auth_client()
    code = smartcar_sandbox.issue_code()
    client.exchange_code(code)
    error = _oauth_error(lambda: client.exchange_code(code))
    assert error.status_code == 400
    assert error.type == "invalid_grant"
    assert error.message == "Authorization code has already been used."


def test_unknown_code(smartcar_sandbox) -> None:
    error = _oauth_error(lambda: smartcar_sandbox.auth_client().exchange_code("no-such-code"))
    assert (error.status_code, error.type) == (400, "invalid_request")
    assert error.message == "Invalid code: no-such-code."


def test_expired_code(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(CODE_LIFETIME=0)
    code = smartcar_sandbox.issue_code()
    error = _oauth_error(lambda: smartcar_sandbox.auth_client().exchange_code(code))
    assert (error.status_code, error.type) == (400, "invalid_grant")
    assert error.message == "Authorization code has expired."


def test_redirect_uri_must_match_and_a_refused_exchange_keeps_the_code(smartcar_sandbox) -> None:
    code = smartcar_sandbox.issue_code()
    elsewhere = smartcar.AuthClient(
        smartcar_sandbox.client_id,
        smartcar_sandbox.client_secret,
        "https://evil.example/callback",
        mode="test",
    )
    error = _oauth_error(lambda: elsewhere.exchange_code(code))
    assert (error.status_code, error.type) == (400, "invalid_grant")
    assert error.message == "Unauthorized redirect_uri: https://evil.example/callback"
    # The refusal changed nothing: the code still works with the right redirect URI.
    assert smartcar_sandbox.auth_client().exchange_code(code).token_type == "Bearer"


def test_missing_redirect_uri_and_code(smartcar_sandbox) -> None:
    code = smartcar_sandbox.issue_code()
    no_redirect = _post(smartcar_sandbox, {"grant_type": "authorization_code", "code": code})
    assert no_redirect.status_code == 400
    assert no_redirect.json() == {
        "error": "invalid_request",
        "error_description": "Missing required parameter: redirect_uri.",
    }
    no_code = _post(
        smartcar_sandbox,
        {"grant_type": "authorization_code", "redirect_uri": smartcar_sandbox.redirect_uri},
    )
    assert no_code.json()["error_description"] == "Missing required parameter: code."


def test_code_of_another_client_is_unknown_to_this_one(smartcar_sandbox) -> None:
    grants.register_application("other-client", "other-secret", [smartcar_sandbox.redirect_uri])
    code = smartcar_sandbox.issue_code(client_id="other-client")
    error = _oauth_error(lambda: smartcar_sandbox.auth_client().exchange_code(code))
    assert (error.status_code, error.type) == (400, "invalid_request")
    assert AuthorizationCode.objects.get(code=code).used_at is None


def test_concurrent_exchanges_of_one_code_succeed_once(smartcar_sandbox) -> None:
    code = smartcar_sandbox.issue_code()
    client = smartcar_sandbox.auth_client()

    def exchange(_: int) -> str:
        try:
            return client.exchange_code(code).access_token
        except smartcar.SmartcarException as error:
            return error.type

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(exchange, range(6)))
    assert outcomes.count("invalid_grant") == 5
    assert Token.objects.filter(kind="access", token__in=outcomes).count() == 1


# --- client authentication ----------------------------------------------------------------


def test_wrong_secret_is_invalid_client(smartcar_sandbox) -> None:
    client = smartcar.AuthClient(
        smartcar_sandbox.client_id, "wrong", smartcar_sandbox.redirect_uri, mode="test"
    )
    error = _oauth_error(lambda: client.exchange_code(smartcar_sandbox.issue_code()))
    assert (error.status_code, error.type) == (401, "invalid_client")
    assert error.message == "Invalid client credentials."


def test_unknown_client_is_invalid_client(smartcar_sandbox) -> None:
    client = smartcar.AuthClient("nobody", "secret", smartcar_sandbox.redirect_uri, mode="test")
    error = _oauth_error(lambda: client.exchange_refresh_token(str(uuid.uuid4())))
    assert (error.status_code, error.type) == (401, "invalid_client")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b"a\x00b:secret").decode(),
        "Basic " + base64.b64encode(("x" * 500 + ":y").encode()).decode(),
    ],
)
def test_missing_or_malformed_credentials_are_invalid_client(
    smartcar_sandbox, authorization
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(
        smartcar_sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["error"] == "invalid_client"


# --- refresh ------------------------------------------------------------------------------


def test_refresh_rotates_both_tokens(smartcar_sandbox) -> None:
    client = smartcar_sandbox.auth_client()
    first = smartcar_sandbox.authorize()
    second = client.exchange_refresh_token(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.expires_in == 7200
    third = client.exchange_refresh_token(second.refresh_token)
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 2


def test_refresh_answer_has_exactly_the_oauth_fields(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    response = _post(
        smartcar_sandbox, {"grant_type": "refresh_token", "refresh_token": access.refresh_token}
    )
    assert response.status_code == 200
    assert set(response.json()) == TOKEN_KEYS


def test_used_refresh_token_works_during_the_grace_period(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(ROTATION_GRACE=60)
    client = smartcar_sandbox.auth_client()
    old = smartcar_sandbox.authorize().refresh_token
    client.exchange_refresh_token(old)
    again = client.exchange_refresh_token(old)
    assert again.refresh_token != old
    assert client.exchange_refresh_token(again.refresh_token).token_type == "Bearer"


def test_used_refresh_token_dies_at_once_without_grace(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(rotation_grace=0)
    client = smartcar_sandbox.auth_client()
    old = smartcar_sandbox.authorize().refresh_token
    new = client.exchange_refresh_token(old)
    error = _oauth_error(lambda: client.exchange_refresh_token(old))
    assert (error.status_code, error.type) == (400, "invalid_grant")
    assert error.message == "Invalid or expired refresh token."
    assert client.exchange_refresh_token(new.refresh_token).token_type == "Bearer"


def test_concurrent_refreshes_without_grace_succeed_once(smartcar_sandbox) -> None:
    smartcar_sandbox.configure(ROTATION_GRACE=0)
    client = smartcar_sandbox.auth_client()
    old = smartcar_sandbox.authorize().refresh_token

    def refresh(_: int) -> str:
        try:
            return client.exchange_refresh_token(old).refresh_token
        except smartcar.SmartcarException as error:
            return error.type

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(refresh, range(8)))
    assert outcomes.count("invalid_grant") == 7
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 8
    assert smartcar_sandbox.request_count("token", detail="refresh_token", status=200) == 1


def test_concurrent_refreshes_within_grace_all_succeed(smartcar_sandbox) -> None:
    client = smartcar_sandbox.auth_client()
    old = smartcar_sandbox.authorize().refresh_token
    with ThreadPoolExecutor(max_workers=5) as pool:
        tokens = list(
            pool.map(lambda _: client.exchange_refresh_token(old).refresh_token, range(5))
        )
    assert len(set(tokens)) == 5


@pytest.mark.parametrize(
    "spoil",
    [
        lambda sandbox, access: sandbox.expire_refresh_tokens(),
        lambda sandbox, access: sandbox.revoke_tokens(),
        lambda sandbox, access: Token.objects.filter(token=access.refresh_token).delete(),
    ],
    ids=["expired", "revoked", "unknown"],
)
def test_dead_refresh_token_is_invalid_grant(smartcar_sandbox, spoil) -> None:
    access = smartcar_sandbox.authorize()
    spoil(smartcar_sandbox, access)
    error = _oauth_error(
        lambda: smartcar_sandbox.auth_client().exchange_refresh_token(access.refresh_token)
    )
    assert (error.status_code, error.type) == (400, "invalid_grant")
    assert error.message == "Invalid or expired refresh token."


def test_revoking_one_user_spares_the_others(smartcar_sandbox) -> None:
    from vehicle_auth.sandbox import data

    mine = smartcar_sandbox.authorize(email="me@example.com")
    theirs = smartcar_sandbox.authorize(email="them@example.com")
    assert smartcar_sandbox.revoke_tokens(data.user_id_for("me@example.com")) == 2
    client = smartcar_sandbox.auth_client()
    assert client.exchange_refresh_token(theirs.refresh_token).token_type == "Bearer"
    error = _oauth_error(lambda: client.exchange_refresh_token(mine.refresh_token))
    assert error.type == "invalid_grant"


def test_refresh_token_of_another_client_is_invalid_grant(smartcar_sandbox) -> None:
    grants.register_application("other-client", "other-secret", [smartcar_sandbox.redirect_uri])
    other = smartcar.AuthClient(
        "other-client", "other-secret", smartcar_sandbox.redirect_uri, mode="test"
    )
    access = other.exchange_code(smartcar_sandbox.issue_code(client_id="other-client"))
    error = _oauth_error(
        lambda: smartcar_sandbox.auth_client().exchange_refresh_token(access.refresh_token)
    )
    assert error.type == "invalid_grant"
    # Refused, the token was not used up: its own client can still refresh with it.
    assert other.exchange_refresh_token(access.refresh_token).token_type == "Bearer"


def test_access_token_is_not_a_refresh_token(smartcar_sandbox) -> None:
    access = smartcar_sandbox.authorize()
    error = _oauth_error(
        lambda: smartcar_sandbox.auth_client().exchange_refresh_token(access.access_token)
    )
    assert error.type == "invalid_grant"


# --- malformed requests -------------------------------------------------------------------


DEAD_REFRESH = ("invalid_grant", "Invalid or expired refresh token.")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, ("invalid_request", "Missing required parameter: grant_type.")),
        (
            {"grant_type": "password"},
            ("unsupported_grant_type", "Unsupported grant_type: password."),
        ),
        (
            {"grant_type": "refresh_token"},
            ("invalid_request", "Missing required parameter: refresh_token."),
        ),
        ({"grant_type": "refresh_token", "refresh_token": "ü" * 10_000}, DEAD_REFRESH),
        ({"grant_type": "refresh_token", "refresh_token": "a\x00b"}, DEAD_REFRESH),
    ],
)
def test_bad_forms_get_oauth_errors(smartcar_sandbox, data, expected) -> None:
    response = _post(smartcar_sandbox, data)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    error, description = expected
    assert response.json() == {"error": error, "error_description": description}


def test_huge_unknown_code_is_echoed_shortened(smartcar_sandbox) -> None:
    response = _post(
        smartcar_sandbox,
        {"grant_type": "authorization_code", "code": "é" * 5000, "redirect_uri": "x"},
    )
    assert response.status_code == 400
    description = response.json()["error_description"]
    assert description.startswith("Invalid code: éé")
    assert len(description) < 200


@pytest.fixture
def raw_client(db: None) -> tuple[Client, dict[str, str]]:
    """Django's test client with the Basic credentials of a registered application."""
    grants.register_application("raw-client", "raw-secret", ["https://app.example/cb"])
    credentials = base64.b64encode(b"raw-client:raw-secret").decode()
    return Client(), {"HTTP_AUTHORIZATION": f"Basic {credentials}"}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b'{"grant_type": "refresh_token"}', "application/json", "invalid_request"),
        (b"\xff\xfe\x00garbage", FORM, "invalid_request"),
        (b"--boundary\r\nbroken", "multipart/form-data; boundary=boundary", "invalid_request"),
        (b"grant_type=%ZZ&&&==", FORM, "unsupported_grant_type"),
        ("grant_type=ünïcödé".encode(), FORM, "unsupported_grant_type"),
        (b"x" * 3_000_000, FORM, "invalid_request"),
        (b"&".join(b"f%d=1" % i for i in range(2000)), FORM, "invalid_request"),
    ],
    ids=["json", "binary", "broken-multipart", "bad-escapes", "unicode", "huge", "too-many-fields"],
)
def test_garbage_bodies_get_oauth_errors(raw_client, body, content_type, error) -> None:
    client, auth = raw_client
    response = client.post(
        reverse("vehicle_auth_sandbox:token"), body, content_type=content_type, **auth
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error


def test_wrong_method_is_405_with_an_oauth_body(raw_client) -> None:
    client, auth = raw_client
    for method in (client.get, client.put, client.delete):
        response = method(reverse("vehicle_auth_sandbox:token"), **auth)
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert response.json()["error"] == "invalid_request"


def test_token_endpoint_logs_the_grant_type(raw_client) -> None:
    client, auth = raw_client
    client.post(
        reverse("vehicle_auth_sandbox:token"),
        {"grant_type": "refresh_token", "refresh_token": "x" * 100},
        **auth,
    )
    log = RequestLog.objects.get()
    assert (log.endpoint, log.method, log.status, log.detail) == (
        "token",
        "POST",
        400,
        "refresh_token",
    )
