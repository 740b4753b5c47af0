"""Bulk token refresh: time for 1,000 accounts at 50 ms sandbox latency, and memory as they grow.

    .venv/bin/python bench/refresh_bulk.py [--accounts 1000] [--concurrency 8]
        [--latency 0.05] [--memory-accounts 10000] [--sandbox process|thread]
        [--sandbox-processes 1] [--refresh-memory] [--json]

Standalone: uses tests.settings on its own scratch database (a temporary SQLite file, or a
temporary database on the PostgreSQL server of DATABASE_URL when that is set, dropped at
the end), migrates it, and serves the project, sandbox included, on 127.0.0.1 (a free
port), with `--latency` seconds injected on the token endpoint.

Where the sandbox runs: Smartcar answers from other machines, so by default the sandbox is
served by a separate process (`--sandbox process`; a pool of threads keeping their
database connections, as a production WSGI server would). `--sandbox thread` serves it
from a ThreadedWSGIServer thread of this very process instead: then the sandbox's own CPU
time (a full Django request and about ten queries per refresh) competes with the app's
for one interpreter lock, and the figure measures the stand-in as much as the app.

1. Time: `--accounts` accounts with real sandbox tokens (created directly through
   vehicle_auth.sandbox.grants) and expired access tokens are refreshed by
   `refresh_expiring_accounts(concurrency=N)`. Every refresh waits `latency` at the
   sandbox, so no run can beat accounts x latency / N: the floor. Target: at most 1.25 x.
   Also printed: how long the sandbox actually took to answer (latency plus its own
   service time on this machine) and the run against that "answer floor" (the sum of the
   answer times / N): the overhead that is the app's alone.
2. Memory: peak Python allocations (tracemalloc) while the job selects and streams the
   due accounts (a dry run: the selection, keyset pages and per-account reports, no HTTP)
   with `--accounts` and with `--memory-accounts` accounts due, raw and with CPython's
   type attribute cache cleared at each chunk (see `selection_memory`). Target: the larger
   within 1.2 x. `--refresh-memory` also measures real refreshes at both sizes (latency 0;
   slow under tracemalloc: about 3 minutes more).

Exit status 1 when a target is missed. Runs in well under 3 minutes with the defaults.
With `--json` the figures are printed as one JSON object on stdout (the details on stderr)
for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _harness import Figure, figure_output  # noqa: E402

TIME_TARGET = 1.25
MEMORY_TARGET = 1.2


# --- set-up -----------------------------------------------------------------------------------


def _django_environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    # Real Smartcar credentials in the environment would point the app away from the sandbox.
    for name in ("SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET", "SMARTCAR_REDIRECT_URI"):
        os.environ.pop(name, None)


@contextmanager
def scratch_database() -> Iterator[str]:
    """Django set up on a fresh, migrated database; yields a description of it.

    Afterwards DATABASE_URL in os.environ names the scratch database, for child processes.
    """
    _django_environment()
    on_postgresql = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    if not on_postgresql:
        folder = tempfile.TemporaryDirectory(prefix="vehicle_auth-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder.name}/bench.sqlite3"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    scratch = f"vehicle_auth_bench_{os.getpid()}"
    original = connection.settings_dict["NAME"]
    if on_postgresql:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{scratch}"')
        connections.close_all()
        connection.settings_dict["NAME"] = scratch
        url = urlsplit(os.environ["DATABASE_URL"])
        os.environ["DATABASE_URL"] = url._replace(path=f"/{scratch}").geturl()
    try:
        call_command("migrate", verbosity=0)
        yield f"PostgreSQL (scratch database {scratch})" if on_postgresql else "SQLite (WAL)"
    finally:
        connections.close_all()
        if on_postgresql:
            connection.settings_dict["NAME"] = original
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            connections.close_all()
        else:
            folder.cleanup()


def _quiet_handler() -> type:
    from django.core.servers.basehttp import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    return QuietHandler


def serve_sandbox(port: int) -> None:
    """Child process: serve the project on `port` (bench/_sandbox_server.py); print the URL."""
    _django_environment()
    from _sandbox_server import serve

    serve(port)


@contextmanager
def sandbox_processes(count: int) -> Iterator[str]:
    """`count` processes serving the sandbox on one free port; its base URL."""
    children: list[subprocess.Popen[str]] = []
    port, base = 0, ""
    try:
        for _ in range(count):
            child = subprocess.Popen(
                [sys.executable, __file__, "--serve-sandbox", str(port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            children.append(child)
            base = (child.stdout.readline() if child.stdout else "").strip()
            if not base.startswith("http://"):
                raise RuntimeError(f"the sandbox server did not start: {base!r}")
            port = int(base.rsplit(":", 1)[1])
        yield base
    finally:
        for child in children:
            child.terminate()
            child.wait(timeout=10)


@contextmanager
def sandbox_thread() -> Iterator[str]:
    """The project on a ThreadedWSGIServer in a thread of this process; its base URL."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer

    server = ThreadedWSGIServer(("127.0.0.1", 0), _quiet_handler(), allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="sandbox")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def point_app_at(base: str) -> None:
    """Register the app's credentials with the sandbox and point the app at it."""
    from django.conf import settings

    from vehicle_auth.sandbox import grants

    grants.register_application(
        settings.SMARTCAR_CLIENT_ID,
        settings.SMARTCAR_CLIENT_SECRET,
        [settings.SMARTCAR_REDIRECT_URI],
        "Benchmark",
    )
    settings.SMARTCAR_CONNECT_ORIGIN = f"{base}/sandbox"
    settings.SMARTCAR_AUTH_ORIGIN = f"{base}/sandbox/oauth/token"
    settings.SMARTCAR_API_ORIGIN = f"{base}/sandbox"


def create_accounts(count: int, *, real_tokens: bool, first: int = 0) -> None:
    """`count` active accounts of one site user, their access tokens expired.

    With `real_tokens`, each has a sandbox grant and a token pair the sandbox will refresh;
    otherwise made-up tokens (enough for a dry run, which never sends them).
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from vehicle_auth.models import SmartcarAccount
    from vehicle_auth.sandbox import data, grants

    user, _ = get_user_model().objects.get_or_create(username="bench")
    now = timezone.now()
    accounts = []
    with transaction.atomic():
        for n in range(first, first + count):
            email = f"bench{n}@example.com"
            if real_tokens:
                grant = grants.create_grant(
                    client_id=settings.SMARTCAR_CLIENT_ID,
                    user_id=data.user_id_for(email),
                    email=email,
                    mode="test",
                    scopes=["read_vehicle_info"],
                    vehicles=data.vehicles_for(email, "CHEVROLET"),
                )
                pair = grants.issue_tokens(grant)
                access, refresh = str(pair["access_token"]), str(pair["refresh_token"])
            else:
                access, refresh = str(uuid.uuid4()), str(uuid.uuid4())
            accounts.append(
                SmartcarAccount(
                    user=user,
                    smartcar_user_id=data.user_id_for(email),
                    mode="test",
                    access_token=access,
                    refresh_token=refresh,
                    access_expires_at=now - timedelta(minutes=1),
                    refresh_expires_at=now + timedelta(days=59),
                )
            )
        SmartcarAccount.objects.bulk_create(accounts, batch_size=500)


def expire_all() -> None:
    from django.utils import timezone

    from vehicle_auth.models import SmartcarAccount

    SmartcarAccount.objects.update(access_expires_at=timezone.now() - timedelta(minutes=1))


@contextmanager
def timed_answers() -> Iterator[list[float]]:
    """How long each refresh request took to be answered (instrumentation only)."""
    from vehicle_auth import smartcar_client

    durations: list[float] = []
    refresh_tokens = smartcar_client.refresh_tokens

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return refresh_tokens(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - began)

    smartcar_client.refresh_tokens = timed
    try:
        yield durations
    finally:
        smartcar_client.refresh_tokens = refresh_tokens


def peak_memory(run: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes allocated by Python while `run()` ran, and its result."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def verdict(ratio: float, target: float) -> str:
    return f"(target <= {target}) {'OK' if ratio <= target else 'MISSED'}"


# --- the benchmark ------------------------------------------------------------------------------


def time_refresh(args: argparse.Namespace, figures: list[Figure]) -> bool:
    """Part 1; True when the target is missed."""
    from vehicle_auth.refresh import refresh_expiring_accounts
    from vehicle_auth.sandbox import control

    began = time.perf_counter()
    create_accounts(args.accounts, real_tokens=True)
    took = time.perf_counter() - began
    print(f"created {args.accounts} accounts with sandbox tokens in {took:.1f} s")
    control.inject("token", latency=args.latency)
    with timed_answers() as answers:
        began = time.perf_counter()
        summary = refresh_expiring_accounts(concurrency=args.concurrency)
        elapsed = time.perf_counter() - began
    control.clear_faults()
    floor = args.accounts * args.latency / args.concurrency
    answer_floor = sum(answers) / args.concurrency
    requests = control.request_count("token", detail="refresh_token")
    ratio = elapsed / floor
    deciles = statistics.quantiles(answers, n=10)
    print(
        f"\nbulk refresh of {args.accounts} accounts, concurrency {args.concurrency}, "
        f"{args.latency * 1000:g} ms latency on the token endpoint:\n"
        f"  time {elapsed:.2f} s, floor {floor:.2f} s "
        f"({args.accounts} x {args.latency * 1000:g} ms / {args.concurrency}), "
        f"ratio {ratio:.3f} {verdict(ratio, TIME_TARGET)}\n"
        f"  {summary}; refresh requests at the sandbox: {requests}\n"
        f"  the sandbox answered in {statistics.mean(answers) * 1000:.1f} ms on average "
        f"(median {deciles[4] * 1000:.1f}, p90 {deciles[8] * 1000:.1f}), "
        f"not {args.latency * 1000:g}:\n"
        f"  against those answers (sum / {args.concurrency} = {answer_floor:.2f} s) "
        f"the run took {elapsed / answer_floor:.3f} x"
    )
    complete = summary.refreshed == args.accounts and requests == args.accounts
    figures.append(
        Figure(
            f"bulk refresh ({args.accounts:,} accounts, {args.latency * 1000:g} ms latency, "
            f"concurrency {args.concurrency}) ÷ floor",
            f"{ratio:.2f} ({elapsed:.2f} ÷ {floor:.2f} s)"
            + ("" if complete else f"; refreshed {summary.refreshed}, requests {requests}"),
            f"≤ {TIME_TARGET}",
            ratio <= TIME_TARGET and complete,
        )
    )
    figures.append(
        Figure(
            "bulk refresh: sandbox answer time / run ÷ those answers",
            f"{statistics.mean(answers) * 1000:.0f} ms / {elapsed / answer_floor:.2f}",
        )
    )
    return ratio > TIME_TARGET or not complete


def selection_memory(args: argparse.Namespace, figures: list[Figure]) -> bool:
    """Part 2; True when the target is missed.

    Both sizes are measured in one table of `--memory-accounts` accounts, after a warm-up
    pass over all of them: first with only `--accounts` of them due, then with all due.

    Each chunk query makes Django look up `"as_" + vendor` on its SQL nodes, and CPython's
    type attribute cache keeps each such (new, uninterned) name string until its entry is
    replaced: up to 4,096 entries, about 250 KiB, whatever the number of accounts. More
    queries fill more of it, so the raw peak creeps up with the number of chunks until the
    cache is full. The second figure clears that cache at every chunk (from the progress
    callback) to show what the job itself holds; the verdict is on that one.
    """
    from django.utils import timezone

    from vehicle_auth.models import SmartcarAccount
    from vehicle_auth.refresh import CHUNK_SIZE, refresh_expiring_accounts

    clear_type_cache = getattr(sys, "_clear_type_cache", lambda: None)

    def dry_run() -> Any:
        return refresh_expiring_accounts(dry_run=True, progress=lambda report, s: None)

    def dry_run_clearing_type_cache() -> Any:
        def progress(report: Any, summary: Any) -> None:
            if summary.done % CHUNK_SIZE == 0:
                clear_type_cache()

        return refresh_expiring_accounts(dry_run=True, progress=progress)

    create_accounts(args.memory_accounts - args.accounts, real_tokens=False, first=args.accounts)
    expire_all()
    dry_run()
    first_ids = SmartcarAccount.objects.order_by("pk").values("pk")[: args.accounts]
    peaks: dict[str, list[int]] = {"raw": [], "cleared": []}
    due = []
    for make_due in (
        lambda: SmartcarAccount.objects.exclude(pk__in=first_ids).update(
            access_expires_at=timezone.now() + timedelta(hours=2)
        ),
        expire_all,
    ):
        make_due()
        for name, run in (("raw", dry_run), ("cleared", dry_run_clearing_type_cache)):
            gc.collect()
            clear_type_cache()
            peak, summary = peak_memory(run)
            peaks[name].append(peak)
        due.append(summary.would_refresh)
    raw = peaks["raw"][1] / peaks["raw"][0]
    cleared = peaks["cleared"][1] / peaks["cleared"][0]
    print(
        "\npeak memory (tracemalloc) while selecting and streaming due accounts (dry run):\n"
        f"  {'accounts due':>12} {'raw':>12} {'type cache cleared per chunk':>30}\n"
        + "".join(
            f"  {count:>12} {raw_peak / 1024:>8.1f} KiB {clear_peak / 1024:>26.1f} KiB\n"
            for count, raw_peak, clear_peak in zip(due, peaks["raw"], peaks["cleared"], strict=True)
        )
        + f"  ratio: raw {raw:.3f}; type cache cleared {cleared:.3f} "
        f"{verdict(cleared, MEMORY_TARGET)}"
    )
    figures.append(
        Figure(
            f"bulk refresh: peak memory, {due[1]:,} ÷ {due[0]:,} accounts due",
            f"{cleared:.2f} ({peaks['cleared'][1] / 1024:.0f} ÷ "
            f"{peaks['cleared'][0] / 1024:.0f} KiB; raw {raw:.2f})",
            f"≤ {MEMORY_TARGET}",
            cleared <= MEMORY_TARGET,
        )
    )
    return cleared > MEMORY_TARGET


def refresh_memory(args: argparse.Namespace, figures: list[Figure]) -> bool:
    """Peak memory of real refreshes (no latency) at both sizes; True if the target is missed."""
    from vehicle_auth.models import SmartcarAccount
    from vehicle_auth.refresh import refresh_expiring_accounts

    SmartcarAccount.objects.all().delete()
    create_accounts(args.accounts, real_tokens=True, first=10**6)
    small, small_summary = peak_memory(
        lambda: refresh_expiring_accounts(concurrency=args.concurrency)
    )
    create_accounts(args.memory_accounts, real_tokens=True, first=2 * 10**6)
    large, large_summary = peak_memory(
        lambda: refresh_expiring_accounts(concurrency=args.concurrency)
    )
    ratio = large / small
    print(
        "\npeak memory (tracemalloc) of real refreshes, no latency:\n"
        f"  {small_summary.refreshed:>6} accounts: {small / 1024:8.1f} KiB\n"
        f"  {large_summary.refreshed:>6} accounts: {large / 1024:8.1f} KiB\n"
        f"  ratio {ratio:.3f} {verdict(ratio, MEMORY_TARGET)}"
    )
    figures.append(
        Figure(
            "bulk refresh: peak memory of real refreshes, "
            f"{large_summary.refreshed:,} ÷ {small_summary.refreshed:,} accounts",
            f"{ratio:.2f}",
            f"≤ {MEMORY_TARGET}",
            ratio <= MEMORY_TARGET,
        )
    )
    return ratio > MEMORY_TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds (default 0.05)")
    parser.add_argument("--memory-accounts", type=int, default=10_000)
    parser.add_argument("--sandbox", choices=("process", "thread"), default="process")
    parser.add_argument("--sandbox-processes", type=int, default=1)
    parser.add_argument(
        "--refresh-memory",
        action="store_true",
        help="also measure the memory of real refreshes (latency 0) at both sizes",
    )
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument("--serve-sandbox", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox is not None:
        serve_sandbox(args.serve_sandbox)
        return 0

    missed = False
    with figure_output(args.json) as figures, scratch_database() as database:
        if args.sandbox == "thread":
            server, where = sandbox_thread(), "in a thread of this process"
        else:
            server = sandbox_processes(args.sandbox_processes)
            where = f"by {args.sandbox_processes} separate process(es)"
        with server as base:
            point_app_at(base)
            print(f"database: {database}; sandbox served {where}; {os.cpu_count()} CPUs")
            missed |= time_refresh(args, figures)
            missed |= selection_memory(args, figures)
            if args.refresh_memory:
                missed |= refresh_memory(args, figures)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
