"""`prune_authorization_attempts`: old attempts go, each account's current link stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from vehicle_auth.management.commands.prune_authorization_attempts import prune_attempts
from vehicle_auth.models import AuthorizationAttempt

pytestmark = pytest.mark.django_db

Outcome = AuthorizationAttempt.Outcome


@pytest.fixture
def make_attempt(attempt_factory, user):
    """`make_attempt(days_ago, outcome, account=None)`: an attempt started `days_ago`."""

    def make(days_ago: float, outcome: str = Outcome.FAILED, account=None, lifetime=600):
        started = timezone.now() - timedelta(days=days_ago)
        attempt = attempt_factory(user=user, outcome=outcome, account=account)
        # created_at is auto_now_add: an UPDATE is the way to age a row.
        AuthorizationAttempt.objects.filter(pk=attempt.pk).update(
            created_at=started, expires_at=started + timedelta(seconds=lifetime)
        )
        return attempt

    return make


def remaining() -> set[int]:
    return set(AuthorizationAttempt.objects.values_list("pk", flat=True))


def run(*args: str) -> str:
    out = StringIO()
    call_command("prune_authorization_attempts", *args, stdout=out)
    return out.getvalue()


def test_old_attempts_go_and_recent_ones_stay(make_attempt) -> None:
    old = [make_attempt(91, outcome) for outcome in Outcome.values]
    recent = [make_attempt(89, outcome) for outcome in Outcome.values]

    output = run()

    assert remaining() == {a.pk for a in recent}
    assert f"Deleted {len(old)} authorization attempts started before " in output
    assert "(none kept)" in output


def test_each_accounts_latest_success_is_kept_however_old(make_attempt, account_factory, user):
    account = account_factory(user=user)
    first = make_attempt(400, Outcome.SUCCEEDED, account)
    latest = make_attempt(300, Outcome.SUCCEEDED, account)
    failed_relink = make_attempt(200, Outcome.FAILED, account)
    other_account = account_factory(user=user)
    other_latest = make_attempt(100, Outcome.SUCCEEDED, other_account)

    output = run()

    assert remaining() == {latest.pk, other_latest.pk}
    assert first.pk not in remaining()
    assert failed_relink.pk not in remaining()
    assert "Deleted 2 authorization attempts" in output
    assert "kept 2 that produced an account's current link" in output


def test_a_newer_success_makes_an_old_one_prunable(make_attempt, account_factory, user):
    account = account_factory(user=user)
    old_success = make_attempt(120, Outcome.SUCCEEDED, account)
    recent_success = make_attempt(1, Outcome.SUCCEEDED, account)

    run()

    assert remaining() == {recent_success.pk}
    assert old_success.pk not in remaining()


def test_a_success_whose_account_is_gone_is_pruned(make_attempt, account_factory, user):
    account = account_factory(user=user)
    attempt = make_attempt(100, Outcome.SUCCEEDED, account)
    account.delete()  # SET_NULL on the attempt

    run()

    assert attempt.pk not in remaining()


def test_two_successes_at_the_same_instant_keep_one(attempt_factory, account_factory, user):
    account = account_factory(user=user)
    _first, second = (
        attempt_factory(user=user, outcome=Outcome.SUCCEEDED, account=account) for _ in range(2)
    )
    past = timezone.now() - timedelta(days=100)
    AuthorizationAttempt.objects.update(created_at=past, expires_at=past)

    run()

    assert remaining() == {second.pk}


def test_a_state_still_usable_is_never_pruned(make_attempt) -> None:
    # A lifetime set far beyond the cutoff: the attempt could still come back.
    usable = make_attempt(100, Outcome.PENDING, lifetime=200 * 86400)
    expired = make_attempt(100, Outcome.PENDING)

    run("--older-than", "0")

    assert remaining() == {usable.pk}
    assert expired.pk not in remaining()


def test_older_than_is_in_days(make_attempt) -> None:
    week_old = make_attempt(8)
    yesterday = make_attempt(1)

    run("--older-than", "7")

    assert remaining() == {yesterday.pk}
    assert week_old.pk not in remaining()


def test_dry_run_deletes_nothing_and_says_what_it_would(
    make_attempt, account_factory, user
) -> None:
    make_attempt(100)
    make_attempt(100, Outcome.SUCCEEDED, account_factory(user=user))
    before = remaining()

    output = run("--dry-run")

    assert remaining() == before
    assert output.startswith("Dry run: would delete 1 authorization attempts started before")
    assert "kept 1 that produced" in output
    assert "nothing was deleted" in output


def test_deletion_goes_in_batches(make_attempt) -> None:
    for _ in range(7):
        make_attempt(100)

    result = prune_attempts(timedelta(days=90), batch_size=3)

    assert result.deleted == 7
    assert remaining() == set()


@pytest.mark.parametrize("value", ["-1", "ninety", "1.5"])
def test_older_than_must_be_a_whole_number_of_days(value) -> None:
    with pytest.raises(CommandError, match="--older-than"):
        run("--older-than", value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"older_than": timedelta(days=-1)}, "older_than"),
        ({"older_than": timedelta(days=1), "batch_size": 0}, "batch_size"),
    ],
)
def test_prune_attempts_refuses_nonsense(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        prune_attempts(**kwargs)


def test_the_table_is_read_in_a_bounded_number_of_queries(
    make_attempt, django_assert_max_num_queries
) -> None:
    for _ in range(20):
        make_attempt(100)

    with django_assert_max_num_queries(4):  # count, select ids, delete (+ its select)
        prune_attempts(timedelta(days=90))
