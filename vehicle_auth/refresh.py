"""Bulk refresh: every account whose access token expires soon or whose refresh token ages.

Smartcar refresh tokens die 60 days after they were issued, and only a refresh issues a new
one. An owner who does not use the site for two months would have to link their car again,
so a scheduled job (the `refresh_smartcar_tokens` command, cron, or the Celery task in
`vehicle_auth.tasks`) calls `refresh_expiring_accounts()`: it refreshes access tokens that
expire within `within` and refresh tokens older than `keepalive_after`.

Accounts are streamed by primary key, a chunk at a time, so memory stays flat however many
there are. Several runs may overlap, on one machine or many: each account is refreshed
under its row lock, skipped if another run holds it (SKIP LOCKED on PostgreSQL) and checked
again once held, so no account is refreshed twice. SQLite has no row locks: there, runs in
separate processes can refresh the same account twice (the second refresh then fails with
`invalid_grant` once Smartcar's rotation grace is over); run one at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from vehicle_auth.models import SmartcarAccount
from vehicle_auth.tokens import RefreshOutcome, refresh_if_due

logger = logging.getLogger(__name__)

# Smartcar's refresh tokens live 60 days; no answer field says so (SMARTCAR.md §3).
REFRESH_TOKEN_LIFETIME = timedelta(days=60)
DEFAULT_WITHIN = timedelta(minutes=10)
DEFAULT_KEEPALIVE_AFTER = timedelta(days=45)
# Primary keys read per query: one chunk is all the job ever holds in memory.
CHUNK_SIZE = 500

# The outcomes a bulk run reports, besides RefreshOutcome's own.
WOULD_REFRESH = "would_refresh"
ERROR = "error"

_SKIPPED = frozenset(
    {
        RefreshOutcome.NOT_DUE,
        RefreshOutcome.LOCKED,
        RefreshOutcome.INACTIVE,
        RefreshOutcome.WAITING,
    }
)


@dataclass(frozen=True)
class AccountReport:
    """What the run did with one account, handed to the `progress` callback.

    `outcome` is a RefreshOutcome value, WOULD_REFRESH (dry run) or ERROR (an unexpected
    exception, e.g. a database error; `error` holds it). `reason` says why the account was
    selected. Never holds a token.
    """

    account_id: int
    outcome: str
    reason: str = ""
    error: Exception | None = None


@dataclass
class RefreshSummary:
    """Counts of one run; `selected` is how many accounts were due when it started."""

    selected: int = 0
    refreshed: int = 0
    skipped: int = 0
    reauth_required: int = 0
    failed: int = 0
    would_refresh: int = 0
    dry_run: bool = False

    @property
    def done(self) -> int:
        return (
            self.refreshed + self.skipped + self.reauth_required + self.failed + self.would_refresh
        )

    def __str__(self) -> str:
        if self.dry_run:
            return f"would refresh {self.would_refresh} (dry run: nothing was sent to Smartcar)"
        return (
            f"refreshed {self.refreshed}, skipped {self.skipped}, "
            f"reauth required {self.reauth_required}, failed {self.failed}"
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "selected": self.selected,
            "refreshed": self.refreshed,
            "skipped": self.skipped,
            "reauth_required": self.reauth_required,
            "failed": self.failed,
            "would_refresh": self.would_refresh,
        }

    def count(self, report: AccountReport) -> None:
        outcome = report.outcome
        if outcome == RefreshOutcome.REFRESHED:
            self.refreshed += 1
        elif outcome == RefreshOutcome.REAUTH_REQUIRED:
            self.reauth_required += 1
        elif outcome == WOULD_REFRESH:
            self.would_refresh += 1
        elif outcome in _SKIPPED:
            self.skipped += 1
        else:
            self.failed += 1


Progress = Callable[[AccountReport, RefreshSummary], None]


def keepalive_threshold(now: datetime, keepalive_after: timedelta) -> datetime:
    """Refresh tokens expiring before this were issued more than `keepalive_after` ago."""
    return now + REFRESH_TOKEN_LIFETIME - keepalive_after


def due_accounts(now: datetime, within: timedelta, keepalive_after: timedelta) -> QuerySet:
    """Active accounts whose access token expires within `within` or whose refresh token is
    older than `keepalive_after`, leaving out those Smartcar asked us to leave alone for now.
    """
    return (
        SmartcarAccount.objects.filter(status=SmartcarAccount.Status.ACTIVE)
        .filter(
            Q(access_expires_at__isnull=True)
            | Q(access_expires_at__lte=now + within)
            | Q(refresh_expires_at__isnull=True)
            | Q(refresh_expires_at__lte=keepalive_threshold(now, keepalive_after))
        )
        .exclude(refresh_not_before__gt=now)
    )


def _stream(queryset: QuerySet, fields: tuple[str, ...], chunk_size: int) -> Iterator[tuple]:
    """Rows of `queryset` (`fields`, the first being "pk") by keyset pagination on pk.

    One short query per chunk rather than one long cursor: no cursor or transaction stays
    open while refreshes write (SQLite would let an open cursor see those writes), and memory
    holds one chunk whatever the number of accounts.
    """
    last_pk = 0
    while True:
        rows = list(
            queryset.filter(pk__gt=last_pk).order_by("pk").values_list(*fields)[:chunk_size]
        )
        yield from rows
        if len(rows) < chunk_size:
            return
        last_pk = rows[-1][0]
        del rows  # one chunk in memory, not two, while the next one is read


def _reason(
    now: datetime,
    within: timedelta,
    threshold: datetime,
    access_expires_at: datetime | None,
    refresh_expires_at: datetime | None,
) -> str:
    reasons = []
    if access_expires_at is None or access_expires_at <= now + within:
        reasons.append(
            f"access token expires {access_expires_at:%Y-%m-%d %H:%M:%S %Z}"
            if access_expires_at
            else "no access token expiry"
        )
    if refresh_expires_at is None or refresh_expires_at <= threshold:
        reasons.append(
            f"refresh token expires {refresh_expires_at:%Y-%m-%d %H:%M:%S %Z}"
            if refresh_expires_at
            else "no refresh token expiry"
        )
    return "; ".join(reasons)


def _refresh_one(account_id: int, within: timedelta, threshold: datetime) -> AccountReport:
    try:
        result = refresh_if_due(account_id, margin=within, refresh_expiring_before=threshold)
    except Exception as exc:  # one broken account must not stop the run
        logger.exception("Refreshing Smartcar account %s failed unexpectedly", account_id)
        return AccountReport(account_id, ERROR, error=exc)
    return AccountReport(account_id, result.outcome.value, error=result.error)


def refresh_expiring_accounts(
    within: timedelta = DEFAULT_WITHIN,
    keepalive_after: timedelta = DEFAULT_KEEPALIVE_AFTER,
    concurrency: int = 1,
    dry_run: bool = False,
    progress: Progress | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> RefreshSummary:
    """Refresh every active account that is due; the counts of what happened.

    Due: the access token expires within `within`, or the refresh token was issued more
    than `keepalive_after` ago (it expires before now + 60 days - `keepalive_after`).
    Accounts Smartcar asked us to wait for (Retry-After) are left out. `concurrency`
    threads refresh side by side, each on its own database connection (closed when it
    ends). `dry_run` only selects: `progress` gets each account with WOULD_REFRESH and no
    request is sent. `progress(report, summary)` is called after each account, one call at a
    time, from the worker threads.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if within < timedelta(0):
        raise ValueError("within must not be negative")
    if not timedelta(0) <= keepalive_after < REFRESH_TOKEN_LIFETIME:
        raise ValueError("keepalive_after must be at least 0 and less than 60 days")
    now = timezone.now()
    threshold = keepalive_threshold(now, keepalive_after)
    accounts = due_accounts(now, within, keepalive_after)
    summary = RefreshSummary(selected=accounts.count(), dry_run=dry_run)
    lock = threading.Lock()

    def record(report: AccountReport) -> None:
        with lock:
            summary.count(report)
            if progress is not None:
                progress(report, summary)

    if dry_run:
        fields = ("pk", "access_expires_at", "refresh_expires_at")
        for pk, access_expires, refresh_expires in _stream(accounts, fields, chunk_size):
            reason = _reason(now, within, threshold, access_expires, refresh_expires)
            record(AccountReport(pk, WOULD_REFRESH, reason))
        return summary

    ids = (pk for (pk,) in _stream(accounts, ("pk",), chunk_size))
    if concurrency == 1:
        for pk in ids:
            record(_refresh_one(pk, within, threshold))
        return summary
    _run_workers(ids, concurrency, lambda pk: record(_refresh_one(pk, within, threshold)))
    return summary


def _run_workers(ids: Iterator[int], concurrency: int, work: Callable[[int], None]) -> None:
    """Feed `ids` to `concurrency` threads through a short queue (memory stays flat).

    Workers are not daemons: one stopped mid-refresh could lose the new refresh token that
    Smartcar already issued. On an interruption (Ctrl-C), or if `work` raises, no new
    account is started; each worker finishes only the one in hand, then the error is raised.
    """
    pending: queue.Queue[int | None] = queue.Queue(maxsize=2 * concurrency)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while (pk := pending.get()) is not None:
                if errors:
                    continue  # drain the queue so the feeder never blocks
                try:
                    work(pk)
                except BaseException as exc:  # re-raised by the feeding thread
                    errors.append(exc)
        finally:
            # Django opens one connection per thread; nothing reuses it after this one ends.
            connections.close_all()

    threads = [
        threading.Thread(target=worker, name=f"refresh_smartcar_tokens-{n}")
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    try:
        for pk in ids:
            if errors:
                break
            pending.put(pk)
    except BaseException as exc:
        errors.append(exc)
    finally:
        for _ in threads:
            pending.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
