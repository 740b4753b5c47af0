"""Fresh access tokens: refresh under a lock, save the rotated pair at once, track reauth.

Smartcar rotates the refresh token on every refresh and the old one dies about a minute
later, so two refreshes racing, or a new refresh token not saved, lock the owner out.
On databases with SELECT ... FOR UPDATE (PostgreSQL) the account row is locked for the
whole refresh, across processes. SQLite has no row locks and a transaction held across
the network would block every writer, so there a per-account lock serialises refreshes
within one process only: run one process (or PostgreSQL) if refreshes may race.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from vehicle_auth import signals, smartcar_client
from vehicle_auth.concurrency import Deadline
from vehicle_auth.conf import conf
from vehicle_auth.crypto import Undecryptable
from vehicle_auth.exceptions import (
    EncryptionKeyError,
    NotLinked,
    ReauthorizationRequired,
    SmartcarError,
    SmartcarUnavailable,
)
from vehicle_auth.models import SmartcarAccount, Vehicle

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds to wait after a 429 that came without a readable Retry-After.
RATE_LIMIT_BACKOFF = 60

_locks: weakref.WeakValueDictionary[int, threading.Lock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


def _process_lock(account_id: int) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(account_id)
        if lock is None:
            lock = threading.Lock()
            _locks[account_id] = lock
        return lock


def is_fresh(
    account: SmartcarAccount, margin: timedelta | None = None, now: datetime | None = None
) -> bool:
    """Whether the access token stays valid for at least `margin` (default: the setting)."""
    if margin is None:
        margin = timedelta(seconds=conf.REFRESH_MARGIN)
    expires = account.access_expires_at
    return (
        bool(account.access_token)
        and expires is not None
        and expires - margin > (now or timezone.now())
    )


# Refreshes Smartcar answered after our deadline, still being saved, by account id. Smartcar
# rotated the refresh token when it answered, so a new refresh must wait for the late pair
# rather than send the old token (this process only; other processes cannot see it).
_late_refreshes: dict[int, threading.Event] = {}
_late_guard = threading.Lock()


def _expect_late_refresh(account_id: int) -> threading.Event:
    with _late_guard:
        event = _late_refreshes.setdefault(account_id, threading.Event())
    return event


def _late_refresh_done(account_id: int, event: threading.Event) -> None:
    with _late_guard:
        if _late_refreshes.get(account_id) is event:
            del _late_refreshes[account_id]
    event.set()


def _wait_for_late_refresh(account_id: int, deadline: Deadline | None) -> None:
    with _late_guard:
        event = _late_refreshes.get(account_id)
    if event is not None:
        event.wait((deadline or smartcar_client.new_deadline()).remaining())


def _save_late_refresh(
    account_id: int, sent_refresh_token: str
) -> Callable[[smartcar_client.Tokens | None], None]:
    """What to do with tokens Smartcar sent after we stopped waiting: keep them.

    Saved only if the account still holds the refresh token we sent, so a newer pair (from
    a relink, say) is never overwritten. Runs on the SDK call's own thread.
    """

    def save(tokens: smartcar_client.Tokens | None) -> None:
        if tokens is None:
            return
        try:
            with _locked_account(account_id, skip_locked=False) as current:
                if current is not None and current.refresh_token == sent_refresh_token:
                    _store_tokens(current, tokens, timezone.now())
                    logger.info("Saved a late refresh of Smartcar account %s", account_id)
        except Exception:
            logger.exception("Saving a late refresh of Smartcar account %s failed", account_id)
        finally:
            connection.close()  # this thread's own connection

    return save


class RefreshOutcome(StrEnum):
    """What one attempt to refresh an account came to."""

    REFRESHED = "refreshed"
    NOT_DUE = "not_due"  # fresh enough once the lock was held (someone else refreshed it)
    LOCKED = "locked"  # another worker holds the account right now (skip_locked)
    INACTIVE = "inactive"  # needs reauthorization, disconnected or deleted meanwhile
    WAITING = "waiting"  # Smartcar asked us to wait (Retry-After) and the wait is not over
    REAUTH_REQUIRED = "reauth_required"  # Smartcar refused the refresh token just now
    FAILED = "failed"  # transient or unexpected Smartcar failure; tokens left as they were


@dataclass(frozen=True)
class RefreshResult:
    """The outcome for one account and, when it did not succeed, the error behind it."""

    outcome: RefreshOutcome
    error: Exception | None = None


@contextmanager
def _locked_account(account_id: int, *, skip_locked: bool) -> Iterator[SmartcarAccount | None]:
    """The account row, held against concurrent refreshes until the block ends.

    None when it no longer exists or, with `skip_locked`, when another worker holds it.
    """
    if connection.features.has_select_for_update:
        rows = SmartcarAccount.objects.select_for_update(
            skip_locked=skip_locked and connection.features.has_select_for_update_skip_locked
        )
        with transaction.atomic():
            yield rows.filter(pk=account_id).first()
        return
    lock = _process_lock(account_id)
    if not lock.acquire(blocking=not skip_locked):
        yield None
        return
    try:
        yield SmartcarAccount.objects.filter(pk=account_id).first()
    finally:
        lock.release()


def refresh_if_expiring(
    account: SmartcarAccount,
    *,
    margin: timedelta | None = None,
    stale_access_token: str | None = None,
    force: bool = False,
    deadline: Deadline | None = None,
) -> SmartcarAccount:
    """The account with an access token valid for `margin`, refreshing at most once.

    The expiry is checked again once the lock is held, so concurrent callers share one
    refresh. `stale_access_token` forces a refresh unless another caller already replaced
    that token; `force` refreshes whatever the expiry (keep-alive of the refresh token).
    Raises NotLinked, ReauthorizationRequired, SmartcarUnavailable or SmartcarError.
    """
    _wait_for_late_refresh(account.pk, deadline)
    with _locked_account(account.pk, skip_locked=False) as current:
        if current is None:
            raise NotLinked("This Smartcar account no longer exists.")
        result = _refresh_current(current, margin, stale_access_token, force, None, deadline)
    if result.error is not None:
        raise result.error
    return current


def refresh_if_due(
    account_id: int,
    *,
    margin: timedelta,
    refresh_expiring_before: datetime | None = None,
    deadline: Deadline | None = None,
) -> RefreshResult:
    """Refresh one account for a bulk job if it is due; skip it if another worker holds it.

    Never waits for a lock and never raises for a Smartcar answer: the result says what
    happened. Due means the access token is not valid for `margin`, or the refresh token
    expires before `refresh_expiring_before` (keep-alive); both are checked once the row is
    held, so two jobs running at once never refresh an account twice. Locked rows are
    skipped (SKIP LOCKED on PostgreSQL; on SQLite only a refresh in this process is seen).
    """
    _wait_for_late_refresh(account_id, deadline)
    with _locked_account(account_id, skip_locked=True) as current:
        if current is None:
            exists = SmartcarAccount.objects.filter(pk=account_id).exists()
            return RefreshResult(RefreshOutcome.LOCKED if exists else RefreshOutcome.INACTIVE)
        return _refresh_current(current, margin, None, False, refresh_expiring_before, deadline)


def _refresh_current(
    account: SmartcarAccount,
    margin: timedelta | None,
    stale: str | None,
    force: bool,
    refresh_expiring_before: datetime | None,
    deadline: Deadline | None,
) -> RefreshResult:
    """Refresh `account` (already locked) when needed; the error is raised once unlocked."""
    if account.status != SmartcarAccount.Status.ACTIVE:
        return RefreshResult(RefreshOutcome.INACTIVE, _not_usable(account))
    keepalive = refresh_expiring_before is not None and (
        account.refresh_expires_at is None or account.refresh_expires_at <= refresh_expiring_before
    )
    needed = force or keepalive or (stale is not None and account.access_token == stale)
    if not needed and is_fresh(account, margin):
        return RefreshResult(RefreshOutcome.NOT_DUE)
    if isinstance(account.refresh_token, Undecryptable):
        return RefreshResult(
            RefreshOutcome.FAILED,
            EncryptionKeyError(
                f"The refresh token of Smartcar account {account.pk} cannot be decrypted: "
                "restore the key that encrypted it to VEHICLE_AUTH_ENCRYPTION_KEYS."
            ),
        )
    now = timezone.now()
    if account.refresh_not_before and account.refresh_not_before > now:
        wait = int((account.refresh_not_before - now).total_seconds()) + 1
        return RefreshResult(
            RefreshOutcome.WAITING,
            SmartcarUnavailable(
                "retry_later", "Smartcar asked us to wait before refreshing.", retry_after=wait
            ),
        )
    late = _expect_late_refresh(account.pk)
    save_late = _save_late_refresh(account.pk, account.refresh_token)

    def on_late(tokens: smartcar_client.Tokens | None) -> None:
        try:
            save_late(tokens)
        finally:
            _late_refresh_done(account.pk, late)

    try:
        tokens = smartcar_client.refresh_tokens(account.refresh_token, deadline, on_late)
    except SmartcarError as exc:
        if exc.code != "timeout":
            _late_refresh_done(account.pk, late)
        account.last_error_code = exc.code
        account.last_error = exc.description
        fields = ["last_error_code", "last_error", "updated_at"]
        if exc.code == "invalid_grant":
            code = exc.code
            account.status = SmartcarAccount.Status.REAUTH_REQUIRED
            fields.append("status")
            transaction.on_commit(
                lambda: signals.reauthorization_required.send(
                    sender=SmartcarAccount, account=account, error_code=code
                )
            )
            logger.info("Smartcar account %s needs reauthorization", account.pk)
            account.save(update_fields=fields)
            return RefreshResult(RefreshOutcome.REAUTH_REQUIRED, ReauthorizationRequired(account))
        logger.warning("Refreshing Smartcar account %s failed: %s", account.pk, exc.code)
        # A 429 from the token endpoint carries an OAuth body, from which the SDK keeps no
        # Retry-After header: back off by a default then rather than retry at once.
        wait = exc.retry_after or (RATE_LIMIT_BACKOFF if exc.status == 429 else None)
        if wait:
            # Honour Retry-After: nobody refreshes this account before then.
            account.refresh_not_before = now + timedelta(seconds=wait)
            fields.append("refresh_not_before")
        account.save(update_fields=fields)
        return RefreshResult(RefreshOutcome.FAILED, exc)
    _late_refresh_done(account.pk, late)
    _store_tokens(account, tokens, now)
    return RefreshResult(RefreshOutcome.REFRESHED)


def _store_tokens(account: SmartcarAccount, tokens: smartcar_client.Tokens, now: datetime) -> None:
    """Save a refreshed pair on the (locked) account and announce it once committed."""
    # Both tokens and expiries in one write: losing the new refresh token locks the owner out.
    account.access_token = tokens.access_token
    account.refresh_token = tokens.refresh_token
    account.access_expires_at = tokens.access_expires_at
    account.refresh_expires_at = tokens.refresh_expires_at
    account.last_refreshed_at = now
    account.refresh_not_before = None
    account.last_error_code = ""
    account.last_error = ""
    account.save(
        update_fields=[
            "access_token",
            "refresh_token",
            "access_expires_at",
            "refresh_expires_at",
            "last_refreshed_at",
            "refresh_not_before",
            "last_error_code",
            "last_error",
            "updated_at",
        ]
    )
    transaction.on_commit(
        lambda: signals.tokens_refreshed.send(sender=SmartcarAccount, account=account)
    )


def _not_usable(account: SmartcarAccount) -> Exception:
    if account.status == SmartcarAccount.Status.REAUTH_REQUIRED:
        return ReauthorizationRequired(account)
    return NotLinked("This Smartcar account is disconnected.")


def get_vehicle(user: Any, vehicle_id: str) -> Any:
    """A `smartcar.Vehicle` for one of `user`'s linked cars, its token valid for the margin.

    A fresh token costs one query and no HTTP call. Raises NotLinked (no active account of
    this user holds that vehicle), ReauthorizationRequired (the owner must link again) or
    SmartcarUnavailable (a needed refresh could not be done now; try later).
    """
    car = (
        Vehicle.objects.select_related("account")
        .filter(account__user=user, smartcar_id=vehicle_id)
        .exclude(account__status=SmartcarAccount.Status.DISCONNECTED)
        .order_by("-account__updated_at")
        .first()
    )
    if car is None:
        raise NotLinked(f"No linked vehicle {vehicle_id!r} for this user.")
    account = car.account
    if account.status != SmartcarAccount.Status.ACTIVE:
        raise _not_usable(account)
    if not is_fresh(account):
        account = refresh_if_expiring(account)
    return smartcar_client.vehicle(vehicle_id, account.access_token)


def call_vehicle(user: Any, vehicle_id: str, call: Callable[[Any], T]) -> T:
    """Run `call(vehicle)`; on a 401 for a token we believed fresh, refresh once and retry once.

    Example: `odometer = call_vehicle(user, vehicle_id, lambda car: car.odometer())`.
    Each call is bounded by VEHICLE_AUTH_REQUEST_TIMEOUT (SmartcarUnavailable "timeout");
    other errors of `call` come back as the SDK raised them.
    """
    car = get_vehicle(user, vehicle_id)
    try:
        return smartcar_client.run_bounded(lambda: call(car))
    except Exception as exc:
        if not smartcar_client.is_authentication_error(exc):
            raise
    account = (
        SmartcarAccount.objects.filter(user=user, vehicles__smartcar_id=vehicle_id)
        .exclude(status=SmartcarAccount.Status.DISCONNECTED)
        .order_by("-updated_at")
        .first()
    )
    if account is None:
        raise NotLinked(f"No linked vehicle {vehicle_id!r} for this user.")
    account = refresh_if_expiring(account, stale_access_token=car.access_token)
    retry = smartcar_client.vehicle(vehicle_id, account.access_token)
    return smartcar_client.run_bounded(lambda: call(retry))


__all__ = [
    "NotLinked",
    "ReauthorizationRequired",
    "RefreshOutcome",
    "RefreshResult",
    "SmartcarUnavailable",
    "call_vehicle",
    "get_vehicle",
    "is_fresh",
    "refresh_if_due",
    "refresh_if_expiring",
]
