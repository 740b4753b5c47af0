"""Concurrent refreshes: many callers or bulk runs at once cause one refresh per account.

Smartcar's rotation grace is set to 0, so a second refresh with the first one's refresh
token fails with invalid_grant: a race we lose shows up as an account needing
reauthorization, not only as an extra request in the sandbox's log.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tests import race_worker
from vehicle_auth import get_vehicle
from vehicle_auth.models import SmartcarAccount
from vehicle_auth.refresh import refresh_expiring_accounts

pytestmark = pytest.mark.django_db(transaction=True)

REFRESHES = {"endpoint": "token", "detail": "refresh_token"}
# Seconds a spawned process may take to start Django and finish.
PROCESS_TIMEOUT = 60


def expire_all() -> None:
    SmartcarAccount.objects.update(access_expires_at=timezone.now() - timedelta(minutes=1))


def in_threads(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` in `count` threads released at once; their results (or exceptions)."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            start.wait(timeout=10)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def in_processes(count: int, target: Callable[..., None], *args: Any) -> list[tuple[str, Any]]:
    """Run `target(database name, settings, *args, barrier, results)` in `count` spawned
    processes on this test's database; everything they put on `results`."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    overrides = {
        name: getattr(settings, name)
        for name in (
            "SMARTCAR_CLIENT_ID",
            "SMARTCAR_CLIENT_SECRET",
            "SMARTCAR_REDIRECT_URI",
            "SMARTCAR_CONNECT_ORIGIN",
            "SMARTCAR_AUTH_ORIGIN",
            "SMARTCAR_API_ORIGIN",
        )
    }
    name = connection.settings_dict["NAME"]
    processes = [
        context.Process(target=target, args=(name, overrides, *args, barrier, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(PROCESS_TIMEOUT)
    assert [process.exitcode for process in processes] == [0] * count
    reported = []
    while not results.empty():
        reported.append(results.get(timeout=1))
    return reported


@pytest.fixture(autouse=True)
def no_rotation_grace(smartcar_sandbox):
    smartcar_sandbox.configure(ROTATION_GRACE=0)


def test_sixteen_threads_on_an_expired_token_refresh_once(user, linked_account, smartcar_sandbox):
    expire_all()
    car_id = linked_account.vehicles.get().smartcar_id
    # Latency keeps the first refresh in flight while the other threads arrive.
    smartcar_sandbox.inject("token", latency=0.2)
    cars = in_threads(16, lambda: get_vehicle(user, car_id))
    assert [type(car).__name__ for car in cars] == ["Vehicle"] * 16
    tokens = {car.access_token for car in cars}
    linked_account.refresh_from_db()
    assert tokens == {linked_account.access_token}
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert linked_account.status == SmartcarAccount.Status.ACTIVE
    smartcar_sandbox.clear_faults()
    assert cars[0].odometer().distance > 0


@pytest.mark.postgresql
def test_four_processes_on_an_expired_token_refresh_once(user, linked_account, smartcar_sandbox):
    expire_all()
    car_id = linked_account.vehicles.get().smartcar_id
    smartcar_sandbox.inject("token", latency=0.2)
    threads = 4
    reported = in_processes(4, race_worker.get_vehicle_in_threads, user.username, car_id, threads)
    assert len(reported) == 4 * threads
    assert {kind for kind, _ in reported} == {"ok"}, reported
    linked_account.refresh_from_db()
    assert {token for _, token in reported} == {linked_account.access_token}
    assert smartcar_sandbox.request_count(**REFRESHES) == 1
    assert linked_account.status == SmartcarAccount.Status.ACTIVE


def _link_expiring(link_account, user_factory, count: int) -> list[SmartcarAccount]:
    accounts = [
        link_account(user_factory(username=f"owner{n}"), email=f"owner{n}@example.com")
        for n in range(count)
    ]
    expire_all()
    return accounts


def _assert_each_refreshed_once(accounts: list[SmartcarAccount], smartcar_sandbox) -> None:
    assert smartcar_sandbox.request_count(**REFRESHES) == len(accounts)
    for account in accounts:
        old_access = account.access_token
        account.refresh_from_db()
        assert account.status == SmartcarAccount.Status.ACTIVE
        assert account.access_token != old_access
        assert account.access_expires_at > timezone.now() + timedelta(hours=1)


def test_two_bulk_runs_at_once_refresh_each_account_once(
    link_account, user_factory, smartcar_sandbox
):
    accounts = _link_expiring(link_account, user_factory, 6)
    smartcar_sandbox.inject("token", latency=0.1)
    summaries = in_threads(2, lambda: refresh_expiring_accounts(concurrency=3))
    assert sum(summary.refreshed for summary in summaries) == 6
    assert sum(summary.failed + summary.reauth_required for summary in summaries) == 0
    _assert_each_refreshed_once(accounts, smartcar_sandbox)


@pytest.mark.postgresql
def test_bulk_runs_in_two_processes_refresh_each_account_once(
    link_account, user_factory, smartcar_sandbox
):
    accounts = _link_expiring(link_account, user_factory, 8)
    smartcar_sandbox.inject("token", latency=0.1)
    reported = in_processes(2, race_worker.bulk_refresh, 3)
    assert {kind for kind, _ in reported} == {"ok"}, reported
    summaries = [summary for _, summary in reported]
    assert sum(summary["refreshed"] for summary in summaries) == 8
    assert sum(summary["failed"] + summary["reauth_required"] for summary in summaries) == 0
    _assert_each_refreshed_once(accounts, smartcar_sandbox)


@pytest.mark.postgresql
def test_a_bulk_run_skips_an_account_another_worker_holds(linked_account, smartcar_sandbox):
    expire_all()
    held = threading.Event()
    release = threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                SmartcarAccount.objects.select_for_update().get(pk=linked_account.pk)
                held.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert held.wait(timeout=10)
        summary = refresh_expiring_accounts()
    finally:
        release.set()
        holder.join()
    assert (summary.refreshed, summary.skipped) == (0, 1)
    assert smartcar_sandbox.request_count(**REFRESHES) == 0
