"""The rules of linking a car: start an attempt, claim its state, finish it, disconnect.

Plain functions of users, session keys and query parameters, so that views, the admin,
management commands and host code apply exactly the same rules.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from vehicle_auth import signals, smartcar_client
from vehicle_auth.conf import conf
from vehicle_auth.exceptions import (
    InvalidState,
    ReauthorizationRequired,
    SmartcarError,
)
from vehicle_auth.models import AuthorizationAttempt, SmartcarAccount, Vehicle

logger = logging.getLogger(__name__)

Outcome = AuthorizationAttempt.Outcome
Status = SmartcarAccount.Status

# Connect errors that mean "the user chose not to"; the others are failures.
DENIAL_CODES = frozenset({"access_denied", "user_manually_returned_to_application"})
# Extra parameters Connect adds to a vehicle_incompatible error.
VEHICLE_PARAMETERS = ("make", "model", "year", "vin")
MAX_CODE_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 1000


def digest(value: str) -> str:
    """SHA-256 hex digest: how states and session keys are stored and looked up."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# --- Start ----------------------------------------------------------------------------------


def start_authorization(
    user: Any,
    session_key: str,
    *,
    next_url: str = "",
    scopes: list[str] | None = None,
    make: str = "",
    single_select: bool | None = None,
    force_prompt: bool | None = None,
) -> str:
    """Record a new attempt with a fresh 256-bit state; the Connect URL to send the user to.

    Several attempts of one user may be pending at once (several tabs).
    """
    state = secrets.token_urlsafe(32)
    scopes = list(scopes if scopes is not None else conf.SMARTCAR_SCOPES)
    url = smartcar_client.build_connect_url(
        state=state,
        scopes=scopes,
        make=make or conf.CONNECT_MAKE,
        single_select=conf.CONNECT_SINGLE_SELECT if single_select is None else single_select,
        force_prompt=conf.CONNECT_FORCE_PROMPT if force_prompt is None else force_prompt,
    )
    AuthorizationAttempt.objects.create(
        user=user,
        state_hash=digest(state),
        session_hash=digest(session_key),
        next_url=next_url,
        scopes=scopes,
        mode=conf.SMARTCAR_MODE,
        expires_at=timezone.now() + timedelta(seconds=conf.ATTEMPT_LIFETIME),
    )
    return url


# --- Claim ----------------------------------------------------------------------------------


def claim_attempt(state: str, user: Any, session_key: str | None) -> AuthorizationAttempt:
    """The pending attempt `state` belongs to, consumed so that it can never be used again.

    Raises InvalidState for a missing, unknown, expired, already used, other user's or
    other session's state; nothing is sent to Smartcar in any of these cases.
    """
    if not state:
        raise InvalidState("missing")
    attempt = AuthorizationAttempt.objects.filter(state_hash=digest(state)).first()
    if attempt is None:
        raise InvalidState("unknown")
    if attempt.user_id != getattr(user, "pk", None) or not session_key:
        raise InvalidState("foreign")
    if not secrets.compare_digest(attempt.session_hash, digest(session_key)):
        raise InvalidState("foreign")
    if attempt.consumed_at is not None:
        raise InvalidState("used")
    now = timezone.now()
    if attempt.expires_at <= now:
        AuthorizationAttempt.objects.filter(pk=attempt.pk, outcome=Outcome.PENDING).update(
            outcome=Outcome.EXPIRED, completed_at=now
        )
        raise InvalidState("expired")
    # The conditional UPDATE is the claim: of two concurrent callbacks only one matches.
    claimed = AuthorizationAttempt.objects.filter(
        pk=attempt.pk, consumed_at__isnull=True, outcome=Outcome.PENDING
    ).update(consumed_at=now)
    if not claimed:
        raise InvalidState("used")
    attempt.consumed_at = now
    attempt.user = user  # the same user, checked above: saves loading it again
    return attempt


# --- Finish ---------------------------------------------------------------------------------


@dataclass
class CallbackResult:
    """What happened to one attempt, for the page that tells the user."""

    attempt: AuthorizationAttempt
    account: SmartcarAccount | None = None
    created: bool = False
    error_code: str = ""
    error_description: str = ""
    # From Connect's vehicle_incompatible: make, model, year, vin when given.
    vehicle: dict[str, str] = field(default_factory=dict)
    # Connect's configuration_error carries a message meant for the user.
    error_message: str = ""
    smartcar_failure: bool = False
    vehicle_count: int = 0

    @property
    def succeeded(self) -> bool:
        return self.account is not None


def _first(params: Mapping[str, Any], name: str) -> str:
    """One query parameter as text fit to store (PostgreSQL text cannot hold NUL)."""
    value = params.get(name, "")
    return value.replace("\x00", "") if isinstance(value, str) else ""


def complete_authorization(
    attempt: AuthorizationAttempt, params: Mapping[str, Any]
) -> CallbackResult:
    """Finish a claimed attempt with Connect's redirect parameters.

    An `error` ends it as denied or failed. Otherwise the code is exchanged, the Smartcar
    user and all vehicles are read, and account, vehicles and attempt are saved in one
    transaction; a Smartcar failure saves nothing but the failed attempt.
    """
    error = _first(params, "error")
    if error:
        result = CallbackResult(
            attempt,
            error_code=error[:MAX_CODE_LENGTH],
            error_description=_first(params, "error_description")[:MAX_DESCRIPTION_LENGTH],
            vehicle={
                key: _first(params, key)[:64] for key in VEHICLE_PARAMETERS if _first(params, key)
            },
            error_message=_first(params, "error_message")[:MAX_DESCRIPTION_LENGTH],
        )
        outcome = Outcome.DENIED if error in DENIAL_CODES else Outcome.FAILED
        _end(attempt, outcome, result.error_code, result.error_description)
        return result

    code = _first(params, "code")
    if not code or len(code) > 512:
        result = CallbackResult(
            attempt,
            error_code="invalid_request",
            error_description="Connect returned neither a code nor an error.",
        )
        _end(attempt, Outcome.FAILED, result.error_code, result.error_description)
        return result

    try:
        linked = smartcar_client.fetch_linked_account(code, with_vin="read_vin" in _plain(attempt))
    except SmartcarError as exc:
        logger.warning("Linking failed for attempt %s: %s", attempt.pk, exc.code)
        # Smartcar may quote the code ("Invalid code: X."): it is dead, but keep it out anyway.
        description = exc.description.replace(code, "[code]")
        _end(attempt, Outcome.FAILED, exc.code, description)
        return CallbackResult(
            attempt,
            error_code=exc.code,
            error_description=description,
            smartcar_failure=True,
        )

    account, created = save_linked_account(
        attempt.user, linked, mode=attempt.mode, scopes=_plain(attempt), attempt=attempt
    )
    return CallbackResult(
        attempt, account=account, created=created, vehicle_count=len(linked.vehicles)
    )


def _plain(attempt: AuthorizationAttempt) -> set[str]:
    return {scope.removeprefix("required:") for scope in attempt.scopes}


def _end(attempt: AuthorizationAttempt, outcome: str, code: str, description: str) -> None:
    attempt.outcome = outcome
    attempt.error_code = code[:MAX_CODE_LENGTH]
    attempt.error_description = description[:MAX_DESCRIPTION_LENGTH]
    attempt.completed_at = timezone.now()
    attempt.save(update_fields=["outcome", "error_code", "error_description", "completed_at"])


@transaction.atomic
def save_linked_account(
    user: Any,
    linked: smartcar_client.LinkedAccount,
    *,
    mode: str,
    scopes: Iterable[str],
    attempt: AuthorizationAttempt | None = None,
) -> tuple[SmartcarAccount, bool]:
    """Save what a trip through Connect gave (account, vehicles, attempt) in one transaction.

    Linking the same Smartcar account again updates it and replaces its vehicle list; it
    never duplicates. Returns the account and whether it was created.
    """
    tokens = linked.tokens
    account, created = SmartcarAccount.objects.select_for_update().update_or_create(
        user=user,
        smartcar_user_id=linked.smartcar_user_id,
        defaults={
            "mode": mode,
            "scopes": sorted(scopes),
            "access_token": tokens.access_token,
            "access_expires_at": tokens.access_expires_at,
            "refresh_token": tokens.refresh_token,
            "refresh_expires_at": tokens.refresh_expires_at,
            "status": Status.ACTIVE,
            "last_refreshed_at": None,
            "refresh_not_before": None,
            "last_error_code": "",
            "last_error": "",
        },
    )
    new_ids = [car.smartcar_id for car in linked.vehicles]
    if created:
        before: set[str] = set()
    else:
        before = set(account.vehicles.values_list("smartcar_id", flat=True))
    if linked.vehicles:
        Vehicle.objects.bulk_create(
            [
                Vehicle(
                    account=account,
                    smartcar_id=car.smartcar_id,
                    make=car.make,
                    model=car.model,
                    year=car.year,
                    vin=car.vin,
                )
                for car in linked.vehicles
            ],
            update_conflicts=True,
            unique_fields=["account", "smartcar_id"],
            update_fields=["make", "model", "year", "vin", "updated_at"],
        )
    removed = sorted(before - set(new_ids))
    if removed:
        # A car the new grant no longer includes leaves the account.
        Vehicle.objects.filter(account=account, smartcar_id__in=removed).delete()
    added = sorted(set(new_ids) - before)

    if attempt is not None:
        attempt.account = account
        attempt.outcome = Outcome.SUCCEEDED
        attempt.completed_at = timezone.now()
        attempt.save(update_fields=["account", "outcome", "completed_at"])

    def announce() -> None:
        if created:
            signals.account_linked.send(
                sender=SmartcarAccount, account=account, user=user, attempt=attempt
            )
        else:
            signals.account_updated.send(
                sender=SmartcarAccount,
                account=account,
                user=user,
                attempt=attempt,
                added_vehicle_ids=added,
                removed_vehicle_ids=removed,
            )

    transaction.on_commit(announce)
    return account, created


# --- Disconnect -----------------------------------------------------------------------------


@dataclass
class DisconnectResult:
    account: SmartcarAccount
    # False when Smartcar could not be told (the account needs reauthorization).
    revoked_at_smartcar: bool = True
    failures: dict[str, SmartcarError] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return not self.failures


def disconnect_account(account: SmartcarAccount) -> DisconnectResult:
    """Revoke the app's access to each vehicle at Smartcar, then forget the tokens.

    If Smartcar refuses or cannot be reached, nothing is lost locally: the account keeps its
    tokens and the vehicles Smartcar did not release, so the user can try again. An account
    whose refresh token Smartcar already refused cannot be revoked by us; it is disconnected
    locally and the result says so.
    """
    from vehicle_auth import tokens

    vehicle_ids = list(account.vehicles.values_list("smartcar_id", flat=True))
    revoked = True
    try:
        account = tokens.refresh_if_expiring(account)
    except ReauthorizationRequired:
        revoked = False
    except SmartcarError as exc:
        return _disconnect_failed(account, {"*": exc})
    if revoked and vehicle_ids:
        try:
            outcome = smartcar_client.disconnect_vehicles(account.access_token, vehicle_ids)
        except SmartcarError as exc:
            return _disconnect_failed(account, {"*": exc})
        failures = {vid: err for vid, err in outcome.items() if err is not None}
        if failures:
            released = [vid for vid, err in outcome.items() if err is None]
            Vehicle.objects.filter(account=account, smartcar_id__in=released).delete()
            return _disconnect_failed(account, failures)

    with transaction.atomic():
        Vehicle.objects.filter(account=account).delete()
        account.status = Status.DISCONNECTED
        account.access_token = ""
        account.refresh_token = ""
        account.access_expires_at = None
        account.refresh_expires_at = None
        account.save()
        transaction.on_commit(
            lambda: signals.account_unlinked.send(
                sender=SmartcarAccount, account=account, user=account.user, revoked=revoked
            )
        )
    return DisconnectResult(account, revoked_at_smartcar=revoked)


def _disconnect_failed(
    account: SmartcarAccount, failures: dict[str, SmartcarError]
) -> DisconnectResult:
    """Record why Smartcar did not release the account (staff read it in the admin)."""
    error = next(iter(failures.values()))
    account.last_error_code = error.code[:MAX_CODE_LENGTH]
    account.last_error = error.description[:MAX_DESCRIPTION_LENGTH]
    account.save(update_fields=["last_error_code", "last_error", "updated_at"])
    logger.warning("Disconnecting Smartcar account %s failed: %s", account.pk, error.code)
    return DisconnectResult(account, failures=failures)


def visible_accounts(user: Any) -> Any:
    """The user's accounts that still matter to them (not disconnected), with vehicles."""
    return (
        SmartcarAccount.objects.filter(user=user)
        .filter(~Q(status=Status.DISCONNECTED))
        .prefetch_related("vehicles")
        .order_by("-created_at", "-pk")
    )
