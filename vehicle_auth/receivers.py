"""Signal receivers: deleting a site user revokes their cars at Smartcar, best effort.

The user's accounts, vehicles and attempts go with the user (CASCADE), tokens and all. Just
before that, `pre_delete` of the user model notes what is needed to revoke each grant (the
tokens, in memory only) and asks for the revocation once the deletion is committed:

- never while the deleting transaction is open: Smartcar may be slow, and on SQLite an open
  write transaction would also block the sandbox, which shares the database;
- never for a deletion that is rolled back: the user would keep an account whose cars were
  already released.

A Smartcar failure is logged and never undoes or blocks the deletion; the wait is bounded by
VEHICLE_AUTH_REQUEST_TIMEOUT for all of the user's accounts together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import pre_delete

from vehicle_auth import smartcar_client
from vehicle_auth.concurrency import Deadline
from vehicle_auth.crypto import Secret, Undecryptable
from vehicle_auth.exceptions import SmartcarError
from vehicle_auth.models import SmartcarAccount
from vehicle_auth.tokens import is_fresh

logger = logging.getLogger(__name__)

Status = SmartcarAccount.Status
# An access token must stay valid this long to be used as is; revoking takes seconds.
USABLE_FOR = timedelta(seconds=30)


class Revocation(StrEnum):
    """How revoking one deleted account ended."""

    REVOKED = "revoked"  # Smartcar released every vehicle (or had none left)
    FAILED = "failed"  # Smartcar refused or could not be reached: logged
    IMPOSSIBLE = "impossible"  # no usable token (reauthorization needed, key missing)


@dataclass(frozen=True)
class PendingRevocation:
    """What revoking one account's grant needs, read just before the rows are deleted.

    The tokens are `Secret`s: a repr of this object (a log line, a traceback) shows none.
    """

    account_id: int
    status: str
    access_token: Secret
    access_usable: bool
    refresh_token: Secret
    vehicle_ids: tuple[str, ...]


def connect_receivers() -> None:
    """Called from VehicleAuthConfig.ready()."""
    pre_delete.connect(
        revoke_when_user_deleted,
        sender=settings.AUTH_USER_MODEL,
        dispatch_uid="vehicle_auth.revoke_when_user_deleted",
    )


def revoke_when_user_deleted(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """pre_delete of the user model: revoke the user's grants once the deletion commits."""
    pending = pending_revocations(instance, using)
    if pending:
        transaction.on_commit(lambda: revoke_all(pending), using=using, robust=True)


def pending_revocations(user: Any, using: str = "default") -> list[PendingRevocation]:
    """The user's accounts that may still hold a grant at Smartcar."""
    accounts = (
        SmartcarAccount.objects.using(using)
        .filter(user=user)
        .exclude(status=Status.DISCONNECTED)
        .prefetch_related("vehicles")
        .order_by("pk")
    )
    if transaction.get_connection(using).in_atomic_block:
        # Inside the deletion's transaction: on PostgreSQL this waits for a refresh in
        # flight, then reads the tokens it saved rather than the ones it replaced.
        accounts = accounts.select_for_update()
    return [
        PendingRevocation(
            account_id=account.pk,
            status=account.status,
            access_token=account.access_token,
            access_usable=is_fresh(account, margin=USABLE_FOR),
            refresh_token=account.refresh_token,
            vehicle_ids=tuple(vehicle.smartcar_id for vehicle in account.vehicles.all()),
        )
        for account in accounts
    ]


def revoke_all(
    pending: list[PendingRevocation], deadline: Deadline | None = None
) -> dict[int, Revocation]:
    """Revoke each account's vehicles at Smartcar; never raises. Outcomes by account id."""
    deadline = deadline or smartcar_client.new_deadline()
    outcomes: dict[int, Revocation] = {}
    for item in pending:
        try:
            outcomes[item.account_id] = _revoke(item, deadline)
        except Exception:  # best effort: the user is already gone, whatever happens here
            logger.exception(
                "Revoking deleted Smartcar account %s failed unexpectedly", item.account_id
            )
            outcomes[item.account_id] = Revocation.FAILED
    return outcomes


def _revoke(item: PendingRevocation, deadline: Deadline) -> Revocation:
    if not item.vehicle_ids:
        return Revocation.REVOKED
    access = item.access_token
    if not item.access_usable or isinstance(access, Undecryptable):
        if item.status != Status.ACTIVE or isinstance(item.refresh_token, Undecryptable):
            logger.warning(
                "Deleted Smartcar account %s (%s) could not be revoked: no usable token. "
                "Its owner can remove this application in their Smartcar account.",
                item.account_id,
                item.status,
            )
            return Revocation.IMPOSSIBLE
        try:
            # The new pair lives only in memory, for the revocation: the account is gone.
            access = smartcar_client.refresh_tokens(item.refresh_token, deadline).access_token
        except SmartcarError as exc:
            logger.warning(
                "Deleted Smartcar account %s could not be revoked: refreshing failed (%s)",
                item.account_id,
                exc.code,
            )
            return Revocation.FAILED
    try:
        outcome = smartcar_client.disconnect_vehicles(access, item.vehicle_ids, deadline)
    except SmartcarError as exc:
        logger.warning(
            "Deleted Smartcar account %s could not be revoked: %s", item.account_id, exc.code
        )
        return Revocation.FAILED
    failures = sorted({error.code for error in outcome.values() if error is not None})
    if failures:
        logger.warning(
            "Deleted Smartcar account %s: %d of %d vehicles could not be revoked (%s)",
            item.account_id,
            sum(error is not None for error in outcome.values()),
            len(outcome),
            ", ".join(failures),
        )
        return Revocation.FAILED
    logger.info(
        "Deleted Smartcar account %s: %d vehicles revoked at Smartcar",
        item.account_id,
        len(outcome),
    )
    return Revocation.REVOKED
