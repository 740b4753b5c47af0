"""The sandbox's authorization server: registered apps, grants, codes and tokens."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from vehicle_auth.sandbox import conf
from vehicle_auth.sandbox.data import FakeVehicle
from vehicle_auth.sandbox.models import Application, AuthorizationCode, Grant, Token, Vehicle


@dataclass(frozen=True)
class RegisteredApplication:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str] = field(default_factory=list)


def get_application(client_id: str) -> RegisteredApplication | None:
    """The application registered under `client_id`: in the database, else in settings."""
    row = Application.objects.filter(client_id=client_id).first()
    if row is not None:
        return RegisteredApplication(
            row.client_id, row.client_secret, row.name, list(row.redirect_uris)
        )
    for app in conf.get("APPLICATIONS"):
        if app.get("client_id") == client_id:
            return RegisteredApplication(
                app["client_id"],
                app["client_secret"],
                app.get("name", "Sandbox application"),
                list(app.get("redirect_uris", [])),
            )
    return None


def register_application(
    client_id: str, client_secret: str, redirect_uris: Iterable[str], name: str = ""
) -> None:
    """Register (or update) an application with the sandbox at run time."""
    Application.objects.update_or_create(
        client_id=client_id,
        defaults={
            "client_secret": client_secret,
            "redirect_uris": list(redirect_uris),
            "name": name or "Sandbox application",
        },
    )


@transaction.atomic
def create_grant(
    *,
    client_id: str,
    user_id: str,
    email: str,
    mode: str,
    scopes: Iterable[str],
    vehicles: Iterable[FakeVehicle],
) -> Grant:
    """Record a user's consent to `client_id` for `scopes` (no `required:` prefix) and cars."""
    grant = Grant.objects.create(
        client_id=client_id, user_id=user_id, email=email, mode=mode, scopes=list(scopes)
    )
    Vehicle.objects.bulk_create(
        Vehicle(
            grant=grant,
            vehicle_id=car.vehicle_id,
            make=car.make,
            model=car.model,
            year=car.year,
            vin=car.vin,
            odometer=car.odometer,
            position=position,
        )
        for position, car in enumerate(vehicles)
    )
    return grant


def issue_code(grant: Grant, redirect_uri: str) -> str:
    """A single-use authorization code for `grant`, bound to `redirect_uri`."""
    code = str(uuid.uuid4())
    AuthorizationCode.objects.create(
        code=code,
        grant=grant,
        redirect_uri=redirect_uri,
        expires_at=timezone.now() + timedelta(seconds=conf.get("CODE_LIFETIME")),
    )
    return code


def issue_tokens(grant: Grant) -> dict[str, object]:
    """A new access + refresh token pair, as the token endpoint's JSON body."""
    now = timezone.now()
    access_lifetime = int(conf.get("ACCESS_TOKEN_LIFETIME"))
    refresh_lifetime = int(conf.get("REFRESH_TOKEN_LIFETIME"))
    # One INSERT for both: the token endpoint calls this inside its transaction, which on
    # SQLite holds the whole database's write lock.
    access, refresh = Token.objects.bulk_create(
        [
            Token(
                token=str(uuid.uuid4()),
                kind=Token.Kind.ACCESS,
                grant=grant,
                expires_at=now + timedelta(seconds=access_lifetime),
            ),
            Token(
                token=str(uuid.uuid4()),
                kind=Token.Kind.REFRESH,
                grant=grant,
                expires_at=now + timedelta(seconds=refresh_lifetime),
            ),
        ]
    )
    return {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access_lifetime,
        "refresh_token": refresh.token,
    }


def new_key() -> str:
    return secrets.token_urlsafe(24)
