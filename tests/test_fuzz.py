"""Fuzzing with hypothesis: whatever a visitor sends, never a 500, never a stray Smartcar call.

Requests go through Django's test client (no HTTP server), so thousands run in seconds. The
runs are derandomized (the same examples every run, in CI too) and keep no example database.
Counts, in all: 2,300 callback requests (1,000 signed in, 1,000 anonymous, 300 with a
valid state) and 1,000 requests to the sandbox's authorize, token and API endpoints.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vehicle_auth import flow, ratelimit
from vehicle_auth.models import AuthorizationAttempt
from vehicle_auth.sandbox import control, grants

CALLBACK = "/vehicles/callback/"
Outcome = AuthorizationAttempt.Outcome


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the fixtures hold for the whole run
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def fuzz(check: Callable[..., None], examples: int, **strategies: Any) -> int:
    """Run `check` on `examples` generated inputs; how many ran (all of them, or it fails)."""
    ran = []

    @fuzz_settings(examples)
    @given(**strategies)
    def run(**kwargs: Any) -> None:
        check(**kwargs)
        ran.append(True)

    run()
    assert len(ran) >= examples, f"only {len(ran)} of {examples} examples ran"
    return len(ran)


# --- strategies -----------------------------------------------------------------------------

# Any text, including NUL, controls, right-to-left marks, astral characters and emoji.
any_text = st.text(max_size=60)
raw_bytes = st.binary(max_size=40)  # percent-encoded: also invalid UTF-8
huge = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["A", "é", "\x00", "💥", "%", "&"]),
    st.integers(min_value=1_000, max_value=30_000),
)


def encoded(text: str) -> str:
    return quote(text, safe="")


def as_wsgi(text: str) -> str:
    """`text` sent unencoded: a WSGI server hands its UTF-8 bytes over as latin-1."""
    return text.encode().decode("latin-1")


# Raw header values: any bytes but the CR and LF that would end the header.
header_text = any_text.map(as_wsgi).map(lambda t: t.replace("\r", "").replace("\n", ""))

value = st.one_of(
    any_text.map(encoded),
    raw_bytes.map(lambda b: quote_from_bytes(b, safe="")),
    huge.map(encoded),
    any_text.map(as_wsgi),  # sent raw: stray "=", "&", "%", spaces and bytes included
    st.sampled_from(["", "%", "%zz", "%%", "+", "a=b", "%00", "null", "[]", "0", "-1"]),
)
CALLBACK_KEYS = [
    "code",
    "state",
    "error",
    "error_description",
    "error_message",
    "status_code",
    "make",
    "model",
    "year",
    "vin",
    "virtual_key_url",
    "next",
]
key = st.one_of(st.sampled_from(CALLBACK_KEYS), any_text.map(encoded), st.just(""))
# A pair may lack "=" altogether ("code" alone), as a hand-typed URL might.
pair = st.builds(lambda k, v, bare: k if bare else f"{k}={v}", key, value, st.booleans())


@st.composite
def queries(draw: st.DrawFn, states: st.SearchStrategy[str]) -> str:
    """A raw query string: known and unknown keys, repeats, huge values, odd separators."""
    pairs = draw(st.lists(pair, max_size=12))
    if draw(st.booleans()):
        pairs.append("state=" + encoded(draw(states)))
    if draw(st.integers(0, 9)) == 0:
        # Far more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS (1000) allows.
        pairs.extend(["code=x"] * draw(st.integers(900, 1500)))
    pairs = draw(st.permutations(pairs))
    return draw(st.sampled_from(["&", ";", "&&"])).join(pairs)


# --- the callback ---------------------------------------------------------------------------


@pytest.fixture
def fuzz_client() -> Client:
    # A 500 comes back as a response instead of an exception, so the assertion shows the query.
    return Client(raise_request_exception=False)


@pytest.fixture
def no_rate_limits(settings) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = dict.fromkeys(ratelimit.RATE_NAMES)


@pytest.fixture
def unusable_states(user, other_user, fuzz_client, smartcar_sandbox) -> dict[str, str]:
    """States that exist but must be refused: another user's, used, expired, another session's."""
    fuzz_client.force_login(user)
    session = fuzz_client.session.session_key

    def state(owner, session_key: str) -> str:
        url = flow.start_authorization(owner, session_key)
        return url.split("state=")[1].split("&")[0]

    others = state(other_user, "someone-elses-session")
    used = state(user, session)
    flow.claim_attempt(used, user, session)
    expired = state(user, session)
    AuthorizationAttempt.objects.filter(state_hash=flow.digest(expired)).update(
        expires_at="2000-01-01T00:00:00Z"
    )
    elsewhere = state(user, "another-session-of-the-same-user")
    return {"others": others, "used": used, "expired": expired, "elsewhere": elsewhere}


@pytest.mark.django_db(transaction=True)
def test_signed_in_callbacks_without_a_valid_state(
    fuzz_client, unusable_states, smartcar_sandbox, no_rate_limits
) -> None:
    states = st.one_of(st.sampled_from(sorted(unusable_states.values())), any_text)

    def check(query: str) -> None:
        response = fuzz_client.get(CALLBACK, QUERY_STRING=query)
        assert response.status_code == 400, query

    fuzz(check, 1000, query=queries(states))

    assert smartcar_sandbox.request_count() == 0  # nothing reached Smartcar
    # Nothing was consumed either: another user's and another session's state still wait.
    for name in ("others", "elsewhere"):
        attempt = AuthorizationAttempt.objects.get(state_hash=flow.digest(unusable_states[name]))
        assert (attempt.outcome, attempt.consumed_at) == (Outcome.PENDING, None)
    assert not AuthorizationAttempt.objects.filter(consumed_at__isnull=False).exclude(
        state_hash=flow.digest(unusable_states["used"])
    )


@pytest.mark.django_db(transaction=True)
def test_anonymous_callbacks(
    fuzz_client, unusable_states, smartcar_sandbox, no_rate_limits
) -> None:
    fuzz_client.logout()
    states = st.one_of(st.sampled_from(sorted(unusable_states.values())), any_text)

    def check(query: str) -> None:
        response = fuzz_client.get(CALLBACK, QUERY_STRING=query)
        assert response.status_code == 400, query

    fuzz(check, 1000, query=queries(states))

    assert smartcar_sandbox.request_count() == 0
    assert not AuthorizationAttempt.objects.filter(consumed_at__isnull=False).exclude(
        state_hash=flow.digest(unusable_states["used"])
    )


@pytest.mark.django_db(transaction=True)
def test_callbacks_with_a_valid_state_and_anything_else(
    user, fuzz_client, smartcar_sandbox, no_rate_limits
) -> None:
    """With a valid state the code may be exchanged: once at most, and the answer is clear."""
    fuzz_client.force_login(user)
    session = fuzz_client.session.session_key

    def check(query: str) -> None:
        url = flow.start_authorization(user, session)
        state = url.split("state=")[1].split("&")[0]
        exchanges = smartcar_sandbox.request_count("token")
        response = fuzz_client.get(CALLBACK, QUERY_STRING=f"{query}&state={state}")
        assert response.status_code in (200, 302, 400, 502), query
        assert smartcar_sandbox.request_count("token") - exchanges <= 1
        attempt = AuthorizationAttempt.objects.get(state_hash=flow.digest(state))
        if response.status_code != 400:  # 400: Django refused the query (too many fields)
            assert attempt.outcome != Outcome.PENDING, query

    fuzz(check, 300, query=queries(st.just("")))

    assert smartcar_sandbox.request_count("token") > 0  # fuzzed codes did reach Smartcar
    assert smartcar_sandbox.request_count("user") == 0  # and none was ever accepted


# --- the sandbox ----------------------------------------------------------------------------

CLIENT_ID = "fuzz-client"
CLIENT_SECRET = "fuzz-secret"
REDIRECT_URI = "https://app.example/vehicles/callback/"


@pytest.fixture
def application(db) -> dict[str, str]:
    """A registered application and live tokens of one of its grants."""
    grants.register_application(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], "fuzz")
    code = control.issue_code(CLIENT_ID, REDIRECT_URI, email="3-vehicles@smartcar.com")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    answer = Client().post(
        "/sandbox/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    tokens = answer.json()
    vehicle = Client().get(
        "/sandbox/v2.0/vehicles", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"
    )
    return {
        "basic": basic,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "vehicle_id": vehicle.json()["vehicles"][0],
    }


def one_of_or_fuzz(*values: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), any_text, huge)


@pytest.mark.django_db
def test_sandbox_authorize(fuzz_client, application) -> None:
    parameters = st.fixed_dictionaries(
        {},
        optional={
            "response_type": one_of_or_fuzz("code"),
            "client_id": one_of_or_fuzz(CLIENT_ID),
            "redirect_uri": one_of_or_fuzz(REDIRECT_URI),
            "scope": one_of_or_fuzz("read_vehicle_info required:read_vin", "read_odometer"),
            "mode": one_of_or_fuzz("live", "test", "simulated"),
            "approval_prompt": one_of_or_fuzz("auto", "force"),
            "state": any_text,
            "make": one_of_or_fuzz("TESLA", "CHEVROLET", "tesla"),
            "single_select": one_of_or_fuzz("true", "false"),
            "single_select_vin": one_of_or_fuzz("5YJSA1E21HF000001", "5YJSA1E21HF00000"),
            "flags": one_of_or_fuzz("country:DE", "a:b c:d"),
            "user": any_text,
        },
    )

    def check(params: dict[str, str], extra: list[str]) -> None:
        query = "&".join([*(f"{k}={encoded(v)}" for k, v in params.items()), *extra])
        response = fuzz_client.get("/sandbox/oauth/authorize", QUERY_STRING=query)
        assert response.status_code < 500, query

    fuzz(check, 300, params=parameters, extra=st.lists(pair, max_size=4))


@pytest.mark.django_db
def test_sandbox_token(fuzz_client, application) -> None:
    authorization = st.one_of(
        st.just(f"Basic {application['basic']}"),
        st.just(""),
        any_text.map(lambda t: "Basic " + base64.b64encode(t.encode()).decode()),
        # ASCII only: the test client cannot put other characters in a header (raw bytes
        # are covered by test_sandbox_token_with_raw_bytes_in_basic_credentials).
        header_text.map(lambda t: "Basic " + t.encode("ascii", "ignore").decode()),
        st.just("Bearer " + application["access_token"]),
    )
    form = st.fixed_dictionaries(
        {},
        optional={
            "grant_type": one_of_or_fuzz("authorization_code", "refresh_token"),
            "code": any_text,
            "redirect_uri": one_of_or_fuzz(REDIRECT_URI),
            "refresh_token": one_of_or_fuzz(application["refresh_token"]),
        },
    )
    content_type = st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/json",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "text/plain",
            "",
        ]
    )

    def check(auth, fields, kind, junk, method, slash) -> None:
        if junk is not None:
            body = junk
        elif kind == "application/json":
            body = json.dumps(fields).encode()
        else:
            body = "&".join(f"{k}={encoded(v)}" for k, v in fields.items()).encode()
        response = fuzz_client.generic(
            method,
            "/sandbox/oauth/token" + ("/" if slash else ""),
            data=body,
            content_type=kind,
            HTTP_AUTHORIZATION=auth,
        )
        assert response.status_code < 500, (auth, fields, kind, junk)
        assert response["Content-Type"].startswith("application/json")

    fuzz(
        check,
        300,
        auth=authorization,
        fields=form,
        kind=content_type,
        junk=st.one_of(st.none(), raw_bytes),
        method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
        slash=st.booleans(),
    )


@pytest.mark.django_db
def test_sandbox_api(fuzz_client, application) -> None:
    vehicle_id = application["vehicle_id"]
    segment = st.one_of(st.just(vehicle_id), any_text.map(encoded), st.just("%2F"), st.just(".."))
    path = st.one_of(
        st.just("user"),
        st.just("vehicles"),
        st.builds(lambda v: f"vehicles/{v}", segment),
        st.builds(
            lambda v, call: f"vehicles/{v}/{call}",
            segment,
            st.sampled_from(["vin", "permissions", "odometer", "application", "nope", ""]),
        ),
        any_text.map(encoded),
    )
    authorization = st.one_of(
        st.just("Bearer " + application["access_token"]),
        st.just(""),
        header_text.map(lambda t: "Bearer " + t),
        header_text,
    )
    query = st.lists(
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["limit", "offset", "x"]) | key, value),
        max_size=4,
    ).map("&".join)

    def check(path, slash, version, auth, query, units, method) -> None:
        headers = {"HTTP_AUTHORIZATION": auth}
        if units is not None:
            headers["HTTP_SC_UNIT_SYSTEM"] = units
        url = f"/sandbox/{version}/{path}" + ("/" if slash else "")
        response = fuzz_client.generic(method, url, QUERY_STRING=query, **headers)
        assert response.status_code < 500, (method, url, query, auth, units)

    fuzz(
        check,
        400,
        path=path,
        slash=st.booleans(),
        version=st.sampled_from(["v2.0", "v2.0", "v2.0", "v1.0", "v3"]),
        auth=authorization,
        query=query,
        units=st.one_of(st.none(), st.sampled_from(["metric", "imperial"]), header_text),
        method=st.sampled_from(["GET", "GET", "DELETE", "POST", "PATCH"]),
    )


@pytest.mark.django_db
def test_sandbox_token_with_raw_bytes_in_basic_credentials(application) -> None:
    response = Client(raise_request_exception=True).post(
        "/sandbox/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": application["refresh_token"]},
        HTTP_AUTHORIZATION=as_wsgi("Basic dXNlcjpwYXNz€"),
    )
    assert response.status_code == 401
