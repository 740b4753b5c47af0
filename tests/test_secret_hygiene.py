"""No token, code, client secret or state in logs, database rows, pages or reprs.

Logs are captured at DEBUG on the root logger (urllib3, Django, the SDK's requests, ours)
through whole flows: linking, refreshes, vehicle calls, the bulk job, disconnect, deletion,
key rotation and failures of each. The secrets looked for are all the sandbox ever issued
(every code and token, read from its own tables at the end), the client secret and every
state the app handed out. The records of the sandbox's Connect screens being walked by the
test's stand-in browser are left out: a browser's URLs carry the state by design.
"""

from __future__ import annotations

import io
import logging
import traceback
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from tests.factories import UserFactory
from tests.fault_helpers import closed_origin, point_smartcar_at
from vehicle_auth import call_vehicle, flow, get_vehicle, receivers, smartcar_client
from vehicle_auth.exceptions import ReauthorizationRequired, SmartcarError
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount
from vehicle_auth.refresh import refresh_expiring_accounts
from vehicle_auth.sandbox.models import AuthorizationCode, Token

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN = "/vehicles/login/"
INDEX = "/vehicles/"


class Secrets:
    """Everything that must never be shown: collected as the test goes, and at the end."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.states: set[str] = set()
        self.extra: set[str] = set()

    def all(self) -> set[str]:
        issued = set(Token.objects.values_list("token", flat=True))
        issued |= set(AuthorizationCode.objects.values_list("code", flat=True))
        assert issued, "the sandbox issued nothing: the test would check nothing"
        values = issued | self.states | self.extra | {self.sandbox.client_secret}
        return {value for value in values if value}

    def found_in(self, text: str) -> list[str]:
        return sorted(secret for secret in self.all() if secret in text)


class LogWatch:
    """The captured records, minus those of the stand-in browser walking Connect."""

    def __init__(self, caplog) -> None:
        self.caplog = caplog
        self.skipped: set[int] = set()

    @contextmanager
    def browser(self):
        start = len(self.caplog.records)
        yield
        self.skipped.update(id(r) for r in self.caplog.records[start:])

    def records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if id(r) not in self.skipped]

    def texts(self) -> list[str]:
        texts = []
        for record in self.records():
            texts.append(record.getMessage())
            texts.append(repr(record.args))
            if record.exc_info:
                texts.append("".join(traceback.format_exception(*record.exc_info)))
            if record.exc_text:
                texts.append(record.exc_text)
        return texts


@pytest.fixture
def secrets(smartcar_sandbox) -> Secrets:
    return Secrets(smartcar_sandbox)


@pytest.fixture
def logs(caplog) -> LogWatch:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    return LogWatch(caplog)


def assert_no_secret_logged(logs: LogWatch, secrets: Secrets) -> None:
    records = logs.records()
    assert records, "nothing was logged: the capture does not work"
    leaks = {secret for text in logs.texts() for secret in secrets.found_in(text)}
    assert not leaks, f"{len(leaks)} secrets in the logs"


def link_through_connect(client: Client, sandbox, secrets: Secrets, logs: LogWatch, **connect):
    """Our login view, the Connect screens (a browser), our callback: the real flow."""
    location = client.get(LOGIN)["Location"]
    secrets.states.add(parse_qs(urlsplit(location).query)["state"][0])
    with logs.browser():
        callback = sandbox.connect(location, **connect)
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}")


def expire(account: SmartcarAccount) -> None:
    account.access_expires_at = timezone.now() - timedelta(minutes=1)
    account.save(update_fields=["access_expires_at"])


# --- logs -----------------------------------------------------------------------------------


def test_the_whole_life_of_a_link_logs_no_secret(
    user, user_client, smartcar_sandbox, secrets, logs, settings
) -> None:
    # Link (three cars), look, refresh, use, bulk-refresh, rotate keys, disconnect.
    response = link_through_connect(
        user_client, smartcar_sandbox, secrets, logs, email="3-vehicles@smartcar.com"
    )
    assert response.status_code == 302
    account = SmartcarAccount.objects.get()
    assert user_client.get(INDEX).status_code == 200
    car_id = account.vehicles.first().smartcar_id
    expire(account)
    assert get_vehicle(user, car_id).attributes().make
    smartcar_sandbox.inject("attributes", status=401, times=1)  # refresh + retry
    assert call_vehicle(user, car_id, lambda car: car.attributes()).make
    expire(SmartcarAccount.objects.get())
    assert refresh_expiring_accounts().refreshed == 1
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = list(reversed(settings.VEHICLE_AUTH_ENCRYPTION_KEYS))
    call_command("reencrypt_smartcar_tokens", stdout=io.StringIO())
    response = user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/")
    assert response.status_code == 302
    assert SmartcarAccount.objects.get().status == SmartcarAccount.Status.DISCONNECTED

    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 3
    assert_no_secret_logged(logs, secrets)


def test_failures_log_no_secret(
    user, user_client, link_account, smartcar_sandbox, secrets, logs, settings
) -> None:
    # Linking fails at the token endpoint, then at /vehicles.
    for endpoint in ("token", "vehicles"):
        smartcar_sandbox.inject(endpoint, status=500, times=1)
        assert link_through_connect(user_client, smartcar_sandbox, secrets, logs).status_code == 502
    # A code Smartcar does not know (its error echoes the code back).
    location = user_client.get(LOGIN)["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    forged = "a0b1c2d3-e4f5-4a6b-8c7d-9e8f7a6b5c4d"
    secrets.states.add(state)
    secrets.extra.add(forged)
    assert user_client.get(f"/vehicles/callback/?code={forged}&state={state}").status_code == 502
    # A state replayed, a state of nobody.
    assert user_client.get(f"/vehicles/callback/?code={forged}&state={state}").status_code == 400
    # Refreshes failing, then refused; a revocation failing; Smartcar unreachable.
    account = link_account(user, email="owner@example.com")
    car_id = account.vehicles.get().smartcar_id
    expire(account)
    smartcar_sandbox.inject("token", status=503, times=1)
    with pytest.raises(SmartcarError):
        get_vehicle(user, car_id)
    smartcar_sandbox.inject("disconnect", status=500, times=1)
    assert user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/").status_code == 302
    expire(account)  # the disconnect attempt refreshed it
    origins = (settings.SMARTCAR_AUTH_ORIGIN, settings.SMARTCAR_API_ORIGIN)
    point_smartcar_at(settings, closed_origin())
    with pytest.raises(SmartcarError):
        get_vehicle(user, car_id)
    settings.SMARTCAR_AUTH_ORIGIN, settings.SMARTCAR_API_ORIGIN = origins
    smartcar_sandbox.inject("token", error_type="invalid_grant", times=1)
    with pytest.raises(ReauthorizationRequired):
        get_vehicle(user, car_id)
    # A user deleted while Smartcar fails; a rate limit hit.
    doomed = UserFactory(username="doomed")
    link_account(doomed, email="doomed@example.com")
    smartcar_sandbox.inject("disconnect", status=500, times=1)
    doomed.delete()
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": "1/m"}
    user_client.get(LOGIN)
    assert user_client.get(LOGIN).status_code == 429

    levels = {record.levelname for record in logs.records()}
    assert {"WARNING", "ERROR"} <= levels  # the failures were logged, just not the secrets
    assert_no_secret_logged(logs, secrets)


def test_an_undecryptable_token_is_logged_without_its_ciphertext(
    user, link_account, smartcar_sandbox, secrets, logs, settings
) -> None:
    account = link_account(user)
    settings.VEHICLE_AUTH_ENCRYPTION_KEYS = ["5XcPNhm2a1kZQ7Xl8b4nT5vHq7JtN0Q9bWm9vHkq2Yw="]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token FROM vehicle_auth_smartcaraccount WHERE id = %s", [account.pk]
        )
        (ciphertext,) = cursor.fetchone()
    secrets.extra.add(ciphertext)

    SmartcarAccount.objects.get(pk=account.pk)

    assert "A access_token value cannot be decrypted with the configured keys" in [
        r.getMessage() for r in logs.records()
    ]
    assert_no_secret_logged(logs, secrets)


def test_error_reports_of_a_failed_callback_hold_no_code_or_state(
    user_client, smartcar_sandbox, secrets, logs
) -> None:
    smartcar_sandbox.inject("token", status=500)

    assert link_through_connect(user_client, smartcar_sandbox, secrets, logs).status_code == 502

    reports = [
        repr(record.request)
        for record in logs.records()
        if record.name == "django.request" and hasattr(record, "request")
    ]
    assert reports
    assert not [report for report in reports if secrets.found_in(report)]


# --- the database ---------------------------------------------------------------------------


def app_tables() -> list[str]:
    """Every table but the sandbox's (the stand-in Smartcar keeps its tokens in clear)."""
    return [
        name
        for name in connection.introspection.table_names()
        if not name.startswith("vehicle_auth_sandbox")
    ]


def test_raw_rows_hold_only_ciphertext(
    user, other_user, user_client, link_account, smartcar_sandbox, secrets, logs
) -> None:
    link_through_connect(user_client, smartcar_sandbox, secrets, logs, email="2-vehicles@x.com")
    other = link_account(other_user, email="someone@example.com")
    expire(other)
    refresh_expiring_accounts()
    smartcar_sandbox.inject("token", status=500, times=1)
    link_through_connect(user_client, smartcar_sandbox, secrets, logs)  # a failed attempt

    found = []
    with connection.cursor() as cursor:
        for table in app_tables():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                found += secrets.found_in(" ".join(str(value) for value in row))
    for session in Session.objects.all():
        found += secrets.found_in(str(session.get_decoded()))
    assert not found

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM vehicle_auth_smartcaraccount")
        columns = [value for row in cursor.fetchall() for value in row]
    assert len(columns) == 4
    assert all(value.startswith("gAAAAA") for value in columns)  # Fernet tokens
    assert AuthorizationAttempt.objects.filter(outcome="failed").exists()


# --- pages and reprs ------------------------------------------------------------------------


def test_pages_show_no_secret(
    user, user_client, other_client, link_account, smartcar_sandbox, secrets, logs, settings
) -> None:
    pages = []
    account = link_account(user)
    pages.append(user_client.get(INDEX))
    # The error page of a failed exchange, of someone else's state, of a replay.
    for fault in ({"status": 500}, {"status": 200, "body": "not json"}):
        smartcar_sandbox.inject("token", times=1, **fault)
        pages.append(link_through_connect(user_client, smartcar_sandbox, secrets, logs))
    theirs = other_client.get(LOGIN)["Location"]
    state = parse_qs(urlsplit(theirs).query)["state"][0]
    secrets.states.add(state)
    query = urlencode({"code": smartcar_sandbox.issue_code(), "state": state})
    pages.append(user_client.get(f"/vehicles/callback/?{query}"))
    pages.append(Client().get(f"/vehicles/callback/?{query}"))
    # A refused disconnect, a rate limit.
    smartcar_sandbox.inject("disconnect", status=500, times=1)
    pages.append(user_client.post(f"/vehicles/accounts/{account.pk}/disconnect/", follow=True))
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": "1/m"}
    user_client.get(LOGIN)
    pages.append(user_client.get(LOGIN))

    assert [page.status_code for page in pages] == [200, 502, 502, 400, 400, 200, 429]
    for page in pages:
        assert not secrets.found_in(page.content.decode())
        assert not secrets.found_in(str(page.headers))


def test_reprs_and_messages_show_no_secret(
    user, link_account, smartcar_sandbox, secrets, settings
) -> None:
    account = link_account(user)
    linked = smartcar_client.fetch_linked_account(smartcar_sandbox.issue_code(), with_vin=True)
    expire(account)
    smartcar_sandbox.inject("token", error_type="invalid_grant", times=1)
    with pytest.raises(ReauthorizationRequired) as refused:
        get_vehicle(user, account.vehicles.get().smartcar_id)
    smartcar_sandbox.inject("token", status=500, times=1)
    with pytest.raises(SmartcarError) as failed:
        smartcar_client.refresh_tokens(account.refresh_token)
    attempt = AuthorizationAttempt.objects.create(
        user=user,
        state_hash="0" * 64,
        session_hash="1" * 64,
        mode="test",
        expires_at=timezone.now(),
    )
    objects = [
        account,
        SmartcarAccount.objects.get(),
        linked,
        linked.tokens,
        refused.value,
        failed.value,
        flow.CallbackResult(attempt, account=account),
        flow.DisconnectResult(account, failures={"car": failed.value}),
        *receivers.pending_revocations(user),
        smartcar_client.vehicle("car", account.access_token),
    ]

    for thing in objects:
        assert not secrets.found_in(repr(thing) + str(thing)), type(thing)


def test_debug_pages_hide_the_client_secret_and_keys(settings) -> None:
    settings.SMARTCAR_CLIENT_SECRET = "the-client-secret-itself"
    shown = str(SafeExceptionReporterFilter().get_safe_settings())

    assert "the-client-secret-itself" not in shown
    for key in settings.VEHICLE_AUTH_ENCRYPTION_KEYS:
        assert key not in shown
