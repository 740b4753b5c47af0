"""`manage.py prune_authorization_attempts`: delete old trips through Connect.

Every visit to /vehicles/login/ records an attempt, so the table grows with traffic. Run
this daily from cron, e.g.

    15 3 * * *  cd /srv/site && .venv/bin/python manage.py prune_authorization_attempts

What is kept, however old: for each account, the attempt that produced its current grant
(its latest successful one), because that is where staff read how and when the link was
made; and any attempt whose state could still be used. Everything else started more than
--older-than days ago goes: pending attempts that never came back, denials, failures,
expired attempts, and the earlier successful attempts of an account linked again.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from vehicle_auth.models import AuthorizationAttempt

DEFAULT_OLDER_THAN_DAYS = 90
DEFAULT_BATCH_SIZE = 1000
Outcome = AuthorizationAttempt.Outcome


@dataclass(frozen=True)
class PruneResult:
    """What one run deleted (or would delete) and what it kept of the old attempts."""

    cutoff: datetime
    deleted: int
    kept: int
    dry_run: bool = False


def old_attempts(cutoff: datetime, now: datetime | None = None) -> QuerySet:
    """Attempts started before `cutoff` whose state can no longer be used."""
    now = now or timezone.now()
    return AuthorizationAttempt.objects.filter(created_at__lt=cutoff, expires_at__lte=now)


def prunable_attempts(cutoff: datetime, now: datetime | None = None) -> QuerySet:
    """The old attempts that may go: all but each account's latest successful attempt."""
    newer_success = AuthorizationAttempt.objects.filter(
        account=OuterRef("account"), outcome=Outcome.SUCCEEDED
    ).filter(
        Q(created_at__gt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
    )
    return old_attempts(cutoff, now).filter(
        ~Q(outcome=Outcome.SUCCEEDED) | Q(account__isnull=True) | Exists(newer_success)
    )


def prune_attempts(
    older_than: timedelta,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
) -> PruneResult:
    """Delete the prunable attempts started more than `older_than` ago, `batch_size` a time.

    Batches keep each DELETE (and the locks it takes) short on a large table.
    """
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    cutoff = now - older_than
    old = old_attempts(cutoff, now).count()
    prunable = prunable_attempts(cutoff, now)
    if dry_run:
        count = prunable.count()
        return PruneResult(cutoff=cutoff, deleted=count, kept=old - count, dry_run=True)
    deleted = 0
    while True:
        batch = list(prunable.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            break
        # Deleting an older success never changes which success is an account's latest,
        # so the selection stays right from one batch to the next.
        deleted += AuthorizationAttempt.objects.filter(pk__in=batch).delete()[0]
        if len(batch) < batch_size:
            break
    return PruneResult(cutoff=cutoff, deleted=deleted, kept=max(0, old - deleted))


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


class Command(BaseCommand):
    help = (
        "Delete authorization attempts started more than --older-than days ago, keeping "
        "each account's latest successful attempt (how its current link was made)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=non_negative_int,
            default=DEFAULT_OLDER_THAN_DAYS,
            metavar="DAYS",
            help=f"Age in days of the attempts to delete (default {DEFAULT_OLDER_THAN_DAYS}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted; delete nothing.",
        )

    def handle(self, *args: Any, older_than: int, dry_run: bool, **options: Any) -> None:
        result = prune_attempts(timedelta(days=older_than), dry_run=dry_run)
        started = f"started before {result.cutoff:%Y-%m-%d %H:%M %Z}"
        kept = (
            f"kept {result.kept} that produced an account's current link"
            if result.kept
            else "none kept"
        )
        if dry_run:
            self.stdout.write(
                f"Dry run: would delete {result.deleted} authorization attempts {started} "
                f"({kept}); nothing was deleted."
            )
        else:
            self.stdout.write(
                f"Deleted {result.deleted} authorization attempts {started} ({kept})."
            )
