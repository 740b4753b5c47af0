"""The bulk refresh: selection, keep-alive, outcomes, the command's output and exit status."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from vehicle_auth import tasks
from vehicle_auth.models import SmartcarAccount
from vehicle_auth.refresh import (
    WOULD_REFRESH,
    AccountReport,
    RefreshSummary,
    due_accounts,
    refresh_expiring_accounts,
)

pytestmark = pytest.mark.django_db(transaction=True)

Status = SmartcarAccount.Status
REFRESHES = {"endpoint": "token", "detail": "refresh_token"}
SUMMARY = re.compile(r"^refreshed (\d+), skipped (\d+), reauth required (\d+), failed (\d+)$", re.M)


class Terminal(io.StringIO):
    """An output stream that says it is a terminal, as a person's shell would."""

    def isatty(self) -> bool:
        return True


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("refresh_smartcar_tokens", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def counts(output: str) -> tuple[int, ...]:
    match = SUMMARY.search(output)
    assert match is not None, output
    return tuple(int(n) for n in match.groups())


def dry_run_ids(output: str) -> list[int]:
    return [int(pk) for pk in re.findall(r"would refresh Smartcar account (\d+):", output)]


@pytest.fixture
def population(account_factory):
    """Accounts at each side of every selection rule (made-up tokens: dry runs only)."""
    now = timezone.now()

    def make(access_in: timedelta | None, refresh_in: timedelta = timedelta(days=60), **extra):
        return account_factory(
            access_expires_at=None if access_in is None else now + access_in,
            refresh_expires_at=now + refresh_in,
            **extra,
        ).pk

    return {
        "expired": make(-timedelta(minutes=5)),
        "expiring": make(timedelta(minutes=9)),
        "in_20_minutes": make(timedelta(minutes=20)),
        "fresh": make(timedelta(hours=2)),
        # Refresh tokens issued 46 and 44 days ago (they die at 60).
        "refresh_46_days_old": make(timedelta(hours=2), timedelta(days=14)),
        "refresh_44_days_old": make(timedelta(hours=2), timedelta(days=16)),
        "no_expiry": make(None),
        "told_to_wait": make(-timedelta(minutes=5), refresh_not_before=now + timedelta(minutes=1)),
        "waited_enough": make(-timedelta(minutes=5), refresh_not_before=now - timedelta(seconds=1)),
        "reauth_required": make(-timedelta(minutes=5), status=Status.REAUTH_REQUIRED),
        "disconnected": make(-timedelta(minutes=5), status=Status.DISCONNECTED),
    }


# --- selection ------------------------------------------------------------------------------


def test_dry_run_lists_due_accounts_and_sends_nothing(population, smartcar_sandbox):
    out, err = run("--dry-run")
    expected = ["expired", "expiring", "refresh_46_days_old", "no_expiry", "waited_enough"]
    assert dry_run_ids(out) == sorted(population[name] for name in expected)
    assert f"would refresh {len(expected)} (dry run: nothing was sent to Smartcar)" in out
    assert "access token expires" in out
    assert "refresh token expires" in out
    assert err == ""
    assert smartcar_sandbox.request_count() == 0


@pytest.mark.parametrize(
    ("args", "added", "removed"),
    [
        (("--within", "30m"), ["in_20_minutes"], []),
        (("--within", "1800"), ["in_20_minutes"], []),
        (("--within", "0"), [], ["expiring"]),
        (("--within", "3h"), ["in_20_minutes", "fresh", "refresh_44_days_old"], []),
        (("--keepalive-after", "47"), [], ["refresh_46_days_old"]),
        (("--keepalive-after", "43d"), ["refresh_44_days_old"], []),
    ],
)
def test_within_and_keepalive_after_move_the_selection(population, args, added, removed):
    default = {"expired", "expiring", "refresh_46_days_old", "no_expiry", "waited_enough"}
    expected = (default | set(added)) - set(removed)
    assert dry_run_ids(run("--dry-run", *args)[0]) == sorted(population[n] for n in expected)


def test_accounts_are_streamed_in_chunks(account_factory):
    expired = timezone.now() - timedelta(minutes=1)
    ids = [account_factory(access_expires_at=expired).pk for _ in range(5)]
    seen = []
    summary = refresh_expiring_accounts(
        dry_run=True, progress=lambda report, _: seen.append(report.account_id), chunk_size=2
    )
    assert seen == sorted(ids)
    assert WOULD_REFRESH == "would_refresh"
    assert (summary.selected, summary.would_refresh) == (5, 5)


def test_due_accounts_is_a_queryset_of_active_accounts(population):
    due = due_accounts(timezone.now(), timedelta(minutes=10), timedelta(days=45))
    assert set(due.values_list("status", flat=True)) == {Status.ACTIVE}
    assert population["told_to_wait"] not in set(due.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "args",
    [
        ("--within", "soon"),
        ("--within", "-5m"),
        ("--keepalive-after", "2w"),
        ("--keepalive-after", "60d"),
        ("--concurrency", "0"),
        ("--concurrency", "many"),
    ],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(CommandError):
        run(*args)


def test_the_function_refuses_bad_values():
    with pytest.raises(ValueError, match="concurrency"):
        refresh_expiring_accounts(concurrency=0)
    with pytest.raises(ValueError, match="within"):
        refresh_expiring_accounts(within=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="keepalive_after"):
        refresh_expiring_accounts(keepalive_after=timedelta(days=61))


# --- real runs against the sandbox ----------------------------------------------------------


def expire(account: SmartcarAccount) -> SmartcarAccount:
    account.access_expires_at = timezone.now() - timedelta(minutes=1)
    account.save(update_fields=["access_expires_at"])
    return account


@pytest.fixture
def linked(link_account, user_factory):
    """`linked(n)`: n accounts of n owners with real sandbox tokens, access tokens expired."""

    def make(count: int) -> list[SmartcarAccount]:
        return [
            expire(link_account(user_factory(username=f"o{n}"), email=f"o{n}@example.com"))
            for n in range(count)
        ]

    return make


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_the_command_refreshes_due_accounts(linked, smartcar_sandbox, concurrency):
    smartcar_sandbox.configure(ROTATION_GRACE=0)
    accounts = linked(6)
    fresh = accounts.pop()
    fresh.access_expires_at = timezone.now() + timedelta(hours=2)
    fresh.save(update_fields=["access_expires_at"])
    out, err = run("--concurrency", concurrency)
    assert counts(out) == (5, 0, 0, 0)
    assert err == ""  # no terminal: no progress
    assert smartcar_sandbox.request_count(**REFRESHES) == 5
    for account in accounts:
        old_refresh = account.refresh_token
        account.refresh_from_db()
        assert account.refresh_token != old_refresh
        assert account.access_expires_at > timezone.now() + timedelta(hours=1)
    # A second run finds nothing to do.
    assert counts(run("--concurrency", concurrency)[0]) == (0, 0, 0, 0)
    assert smartcar_sandbox.request_count(**REFRESHES) == 5


def test_keepalive_refreshes_an_old_refresh_token(linked, smartcar_sandbox):
    [account] = linked(1)
    account.access_expires_at = timezone.now() + timedelta(hours=2)
    account.refresh_expires_at = timezone.now() + timedelta(days=14)  # issued 46 days ago
    account.save(update_fields=["access_expires_at", "refresh_expires_at"])
    assert counts(run()[0]) == (1, 0, 0, 0)
    account.refresh_from_db()
    assert account.refresh_expires_at > timezone.now() + timedelta(days=59)


def test_failures_and_refusals_are_counted_and_exit_non_zero(linked, smartcar_sandbox):
    first, second, third, fourth = linked(4)
    # One worker takes them in pk order: a 500, then a 429, then a refusal, then success.
    smartcar_sandbox.inject("token", status=500, times=1)
    smartcar_sandbox.inject("token", status=429, retry_after=600, times=1)
    smartcar_sandbox.revoke_tokens(third.smartcar_user_id)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("refresh_smartcar_tokens", "--concurrency", "1", stdout=out, stderr=err)
    assert failed.value.returncode == 1
    assert "2 account(s) could not be refreshed" in str(failed.value)
    assert counts(out.getvalue()) == (1, 0, 1, 2)
    assert f"Smartcar account {first.pk}: failed: server_error" in err.getvalue()
    assert f"Smartcar account {second.pk}: failed: rate_limit_exceeded" in err.getvalue()
    assert f"Smartcar account {third.pk}: Smartcar refused" in out.getvalue()
    statuses = dict(SmartcarAccount.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: Status.ACTIVE,
        second.pk: Status.ACTIVE,
        third.pk: Status.REAUTH_REQUIRED,
        fourth.pk: Status.ACTIVE,
    }
    second.refresh_from_db()
    assert second.refresh_not_before > timezone.now() + timedelta(seconds=30)
    # The next run retries the 500 at once and leaves the rate-limited account alone.
    assert counts(run()[0]) == (1, 0, 0, 0)
    assert dry_run_ids(run("--dry-run")[0]) == []
    assert smartcar_sandbox.request_count(**REFRESHES) == 5


def test_progress_is_shown_on_a_terminal_only(linked, smartcar_sandbox):
    linked(2)
    out, err = io.StringIO(), Terminal()
    call_command("refresh_smartcar_tokens", stdout=out, stderr=err)
    assert "\r2/2 accounts: refreshed 2, skipped 0" in err.getvalue()
    assert counts(out.getvalue()) == (2, 0, 0, 0)


def test_progress_callback_sees_every_account(linked, smartcar_sandbox):
    accounts = linked(3)
    reports = []
    summary = refresh_expiring_accounts(
        concurrency=2, progress=lambda report, summary: reports.append((report, summary.done))
    )
    assert sorted(report.account_id for report, _ in reports) == [a.pk for a in accounts]
    assert [done for _, done in reports] == [1, 2, 3]
    assert {report.outcome for report, _ in reports} == {"refreshed"}
    assert all(isinstance(report, AccountReport) for report, _ in reports)
    assert str(summary) == "refreshed 3, skipped 0, reauth required 0, failed 0"


def test_an_error_in_the_progress_callback_stops_the_run(linked, smartcar_sandbox):
    linked(5)

    def broken(report, summary):
        raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        refresh_expiring_accounts(concurrency=2, progress=broken)
    # The workers stopped after the account each had in hand.
    assert smartcar_sandbox.request_count(**REFRESHES) <= 2


def test_summary_text():
    summary = RefreshSummary(refreshed=3, skipped=2, reauth_required=1, failed=4)
    assert str(summary) == "refreshed 3, skipped 2, reauth required 1, failed 4"
    assert summary.done == 10
    dry = RefreshSummary(would_refresh=2, dry_run=True)
    assert str(dry) == "would refresh 2 (dry run: nothing was sent to Smartcar)"


# --- Celery task --------------------------------------------------------------------------------


def test_the_task_runs_without_celery(linked, smartcar_sandbox):
    linked(2)
    assert tasks.shared_task is None  # Celery is not installed in the test environment
    assert tasks.refresh_smartcar_tokens(concurrency=2) == {
        "selected": 2,
        "refreshed": 2,
        "skipped": 0,
        "reauth_required": 0,
        "failed": 0,
        "would_refresh": 0,
    }
