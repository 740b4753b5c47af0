"""The sandbox's token endpoint: authorization-code and refresh-token grants (SMARTCAR.md §3)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from vehicle_auth.sandbox import conf, grants
from vehicle_auth.sandbox.errors import OAuthError
from vehicle_auth.sandbox.faults import read_form, sandbox_view
from vehicle_auth.sandbox.models import AuthorizationCode, Token

# Codes and tokens are UUIDs (64 is the column size); anything longer cannot exist.
MAX_SECRET_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 100
# Unknown values are echoed in error descriptions: keep them readable.
ECHO_LENGTH = 100


def _storable(value: str, max_length: int) -> bool:
    """Whether `value` can be looked up at all (PostgreSQL refuses NUL characters)."""
    return 0 < len(value) <= max_length and "\x00" not in value


def _echo(value: str) -> str:
    return value if len(value) <= ECHO_LENGTH else value[:ECHO_LENGTH] + "…"


def _client_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(client id, secret) from the HTTP Basic `Authorization` header, if well formed."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII input
        return None
    client_id, colon, client_secret = decoded.partition(":")
    return (client_id, client_secret) if colon else None


def _authenticate_client(request: HttpRequest) -> str:
    """The client id after checking its secret; raises invalid_client (401) otherwise."""
    challenge = {"WWW-Authenticate": 'Basic realm="Smartcar sandbox"'}
    credentials = _client_credentials(request)
    if credentials is None:
        raise OAuthError(
            "invalid_client",
            "Missing or malformed client credentials: use HTTP Basic authentication.",
            401,
            challenge,
        )
    client_id, client_secret = credentials
    app = grants.get_application(client_id) if _storable(client_id, MAX_CLIENT_ID_LENGTH) else None
    if app is None or not secrets.compare_digest(
        client_secret.encode(), app.client_secret.encode()
    ):
        raise OAuthError("invalid_client", "Invalid client credentials.", 401, challenge)
    return client_id


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
    return value


def _exchange_code(client_id: str, form: dict[str, str]) -> dict[str, object]:
    code = _required(form, "code")
    redirect_uri = _required(form, "redirect_uri")
    unknown = OAuthError("invalid_request", f"Invalid code: {_echo(code)}.")
    if not _storable(code, MAX_SECRET_LENGTH):
        raise unknown
    now = timezone.now()
    with transaction.atomic():
        # Claim first: a write as the transaction's first statement makes SQLite take its write
        # lock at once (waiting its turn, never failing as "database is locked" mid-way), and
        # one UPDATE decides which of two concurrent exchanges wins. Any error below rolls the
        # claim back.
        claimed = AuthorizationCode.objects.filter(code=code, used_at__isnull=True).update(
            used_at=now
        )
        row = (
            AuthorizationCode.objects.select_for_update()
            .select_related("grant")
            .filter(code=code)
            .first()
        )
        # A code of another client is as unknown to this one as a made-up code.
        if row is None or row.grant.client_id != client_id:
            raise unknown
        if row.expires_at <= now:
            raise OAuthError("invalid_grant", "Authorization code has expired.")
        if not claimed:
            raise OAuthError("invalid_grant", "Authorization code has already been used.")
        if redirect_uri != row.redirect_uri:
            raise OAuthError("invalid_grant", f"Unauthorized redirect_uri: {_echo(redirect_uri)}")
        return grants.issue_tokens(row.grant)


def _refresh(client_id: str, form: dict[str, str]) -> dict[str, object]:
    value = _required(form, "refresh_token")
    invalid = OAuthError("invalid_grant", "Invalid or expired refresh token.")
    if not _storable(value, MAX_SECRET_LENGTH):
        raise invalid
    with transaction.atomic():
        # Claim first, as for codes: the first use of a refresh token starts its grace period.
        claimed = Token.objects.filter(
            token=value, kind=Token.Kind.REFRESH, used_at__isnull=True
        ).update(used_at=timezone.now())
        # Read the clock only now that the write lock is held: a request that waited for a
        # concurrent first use must not measure the grace period from before that use.
        now = timezone.now()
        token = (
            Token.objects.select_for_update()
            .select_related("grant")
            .filter(token=value, kind=Token.Kind.REFRESH)
            .first()
        )
        if (
            token is None
            or token.grant.client_id != client_id
            or token.revoked
            or token.expires_at <= now
        ):
            raise invalid
        # Rotation: a used refresh token keeps working ROTATION_GRACE seconds after first use,
        # like Smartcar's (about a minute), so a client that lost the answer can retry.
        grace = timedelta(seconds=float(conf.get("ROTATION_GRACE")))
        if not claimed and token.used_at is not None and token.used_at + grace <= now:
            raise invalid
        return grants.issue_tokens(token.grant)


@csrf_exempt
@sandbox_view("token", methods=("POST",))
def token(request: HttpRequest) -> HttpResponse:
    """`POST oauth/token`: HTTP Basic client credentials, form body, JSON answer."""
    form = read_form(request)
    grant_type = form.get("grant_type", "") if form is not None else ""
    request.sandbox_log_detail = grant_type  # type: ignore[attr-defined]
    client_id = _authenticate_client(request)
    if form is None:
        raise OAuthError("invalid_request", "The body must be a form (x-www-form-urlencoded).")
    fields = {name: form.get(name, "") for name in ("code", "redirect_uri", "refresh_token")}
    if not grant_type:
        raise OAuthError("invalid_request", "Missing required parameter: grant_type.")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {_echo(grant_type)}.")
    with conf.runtime_snapshot():
        if grant_type == "authorization_code":
            body = _exchange_code(client_id, fields)
        else:
            body = _refresh(client_id, fields)
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"  # RFC 6749 §5.1: token answers are never cached
    return response
