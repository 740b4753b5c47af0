"""`manage.py refresh_smartcar_tokens`: refresh expiring access tokens, keep refresh tokens alive.

Run it from cron every few minutes (less often than `--within`), e.g.

    */5 * * * *  cd /srv/site && .venv/bin/python manage.py refresh_smartcar_tokens --concurrency 4

Overlapping runs, on one machine or several, share the work through row locks on PostgreSQL.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vehicle_auth.refresh import (
    DEFAULT_KEEPALIVE_AFTER,
    DEFAULT_WITHIN,
    ERROR,
    WOULD_REFRESH,
    AccountReport,
    RefreshSummary,
    refresh_expiring_accounts,
)
from vehicle_auth.tokens import RefreshOutcome

# Back to the start of the line and erase it (ANSI), before a line that must stay.
CLEAR_LINE = "\r\033[K"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def duration(default_unit: str) -> Any:
    """An argparse type: "90", "90s", "30m", "2h" or "45d"; a bare number is in `default_unit`."""

    def parse(value: str) -> timedelta:
        match = _DURATION.match(value)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a duration: use a number with s, m, h or d (e.g. 30m, 2h, 45d)"
            )
        number, unit = match.groups()
        return timedelta(seconds=float(number) * _UNITS[(unit or default_unit).lower()])

    parse.__name__ = "duration"  # argparse names the type in its error messages
    return parse


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Command(BaseCommand):
    help = (
        "Refresh Smartcar access tokens expiring within --within, and refresh tokens issued "
        "more than --keepalive-after ago so that no owner is dropped when they turn 60 days "
        "old. Exits with status 1 when any account failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--within",
            type=duration("s"),
            default=DEFAULT_WITHIN,
            help=(
                "Refresh access tokens expiring within this time: seconds or a duration such "
                f"as 30m or 2h (default {_human(DEFAULT_WITHIN)})."
            ),
        )
        parser.add_argument(
            "--keepalive-after",
            type=duration("d"),
            default=DEFAULT_KEEPALIVE_AFTER,
            help=(
                "Refresh refresh tokens older than this (they die at 60 days): days or a "
                f"duration such as 45d (default {_human(DEFAULT_KEEPALIVE_AFTER)})."
            ),
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=4,
            help="Accounts refreshed side by side, each thread on its own connection (4).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the accounts that would be refreshed; send nothing to Smartcar.",
        )

    def handle(
        self,
        *args: Any,
        within: timedelta,
        keepalive_after: timedelta,
        concurrency: int,
        dry_run: bool,
        **options: Any,
    ) -> None:
        # Progress only for a person watching: cron mail and log files get the summary alone.
        on_terminal = self.stderr.isatty()

        def status_line(text: str) -> None:
            # Plain, not in the error colour that Django gives stderr on a terminal.
            self.stderr.write(text, style_func=str, ending="")
            self.stderr.flush()

        def progress(report: AccountReport, summary: RefreshSummary) -> None:
            line = self._describe(report)
            if line and on_terminal:
                status_line(CLEAR_LINE)
            if line:
                failed = report.outcome in (RefreshOutcome.FAILED, ERROR)
                (self.stderr if failed else self.stdout).write(line)
            if on_terminal and not dry_run:
                status_line(f"\r{summary.done}/{summary.selected} accounts: {summary}")

        try:
            summary = refresh_expiring_accounts(
                within=within,
                keepalive_after=keepalive_after,
                concurrency=concurrency,
                dry_run=dry_run,
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if on_terminal and not dry_run and summary.done:
            status_line(CLEAR_LINE)
        self.stdout.write(str(summary))
        if summary.failed:
            raise CommandError(
                f"{summary.failed} account(s) could not be refreshed; they are left as they "
                "were and the next run tries again.",
                returncode=1,
            )

    def _describe(self, report: AccountReport) -> str:
        """The line for one account, or "" when nothing is worth a line (refreshed, skipped)."""
        account = f"Smartcar account {report.account_id}"
        if report.outcome == WOULD_REFRESH:
            return f"would refresh {account}: {report.reason}"
        if report.outcome == RefreshOutcome.REAUTH_REQUIRED:
            return f"{account}: Smartcar refused its refresh token; the owner must reconnect."
        if report.outcome in (RefreshOutcome.FAILED, ERROR):
            return f"{account}: failed: {report.error}"
        return ""
