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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from vehicle_auth import signals, smartcar_client
from vehicle_auth.concurrency import Deadline
from vehicle_auth.conf import conf
from vehicle_auth.exceptions import (
    NotLinked,
    ReauthorizationRequired,
    SmartcarError,
    SmartcarUnavailable,
)
from vehicle_auth.models import SmartcarAccount, Vehicle

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
    Raises ReauthorizationRequired, SmartcarUnavailable or SmartcarError.
    """
    if connection.features.has_select_for_update:
        with transaction.atomic():
            current = SmartcarAccount.objects.select_for_update().get(pk=account.pk)
            error = _refresh_current(current, margin, stale_access_token, force, deadline)
    else:
        with _process_lock(account.pk):
            current = SmartcarAccount.objects.get(pk=account.pk)
            error = _refresh_current(current, margin, stale_access_token, force, deadline)
    if error is not None:
        raise error
    return current


def _refresh_current(
    account: SmartcarAccount,
    margin: timedelta | None,
    stale: str | None,
    force: bool,
    deadline: Deadline | None,
) -> Exception | None:
    """Refresh `account` (already locked) when needed; the error to raise once unlocked."""
    if account.status != SmartcarAccount.Status.ACTIVE:
        return _not_usable(account)
    needed = force or (stale is not None and account.access_token == stale)
    if not needed and is_fresh(account, margin):
        return None
    now = timezone.now()
    if account.refresh_not_before and account.refresh_not_before > now:
        wait = int((account.refresh_not_before - now).total_seconds()) + 1
        return SmartcarUnavailable(
            "retry_later", "Smartcar asked us to wait before refreshing.", retry_after=wait
        )
    try:
        tokens = smartcar_client.refresh_tokens(account.refresh_token, deadline)
    except SmartcarError as exc:
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
            return ReauthorizationRequired(account)
        logger.warning("Refreshing Smartcar account %s failed: %s", account.pk, exc.code)
        if exc.retry_after:
            # Honour Retry-After: nobody refreshes this account before then.
            account.refresh_not_before = now + timedelta(seconds=exc.retry_after)
            fields.append("refresh_not_before")
        account.save(update_fields=fields)
        return exc
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
    return None


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
    """
    car = get_vehicle(user, vehicle_id)
    try:
        return call(car)
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
    return call(smartcar_client.vehicle(vehicle_id, account.access_token))


__all__ = [
    "NotLinked",
    "ReauthorizationRequired",
    "SmartcarUnavailable",
    "call_vehicle",
    "get_vehicle",
    "is_fresh",
    "refresh_if_expiring",
]
