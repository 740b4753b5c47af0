"""Load test: users at once sign in, link a car through the sandbox and load /vehicles/.

    .venv/bin/python bench/load.py [--users 50] [--workers 4] [--threads 4]
        [--sandbox-workers 2] [--timeout 120] [--json]

The demo project is served by gunicorn (`--workers` gthread workers, bench/settings_bench.py)
on a scratch PostgreSQL database (127.0.0.1:5432, user postgres, or the server of
DATABASE_URL; created and dropped here; SQLite when no server answers, and the report says
so). The sandbox is served by a second gunicorn on the same database: another process, as
Smartcar is another site. Everything listens on 127.0.0.1 only.

Each simulated user, all starting together, runs these steps over HTTP with a cookie jar
of its own:
1. sign in: GET /accounts/login/, POST the form (CSRF token included);
2. start linking: GET /vehicles/login/, which redirects to Connect;
3. Connect: `vehicle_auth.sandbox.driver.complete_connect` walks the sandbox's screens
   (brand, login, grant) as an owner would, up to the redirect back to the site;
4. callback: GET /vehicles/callback/?code=...&state=... (the code exchange, /user,
   /vehicles and the car's attributes and VIN happen on the site, against the sandbox);
5. /vehicles/: GET, which must list the car.
A user stops at its first failure. Printed: the requests users sent (not those the site
sends the sandbox), errors and p50/p95 latency per step; then, from the database, how many
Smartcar accounts each user ended up with. Targets: no errors, exactly one account per
user. Every request has a 30 s timeout and the whole run `--timeout` seconds: users not
done by then count as errors.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Figure, Gunicorn, figure_output, percentile, scratch_database, setup_django

STEPS = ("sign in", "start linking", "Connect (sandbox)", "callback", "/vehicles/")
PASSWORD = "load-test-password"  # a throw-away user of a scratch database
TIMEOUT = 30
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class StepResult:
    step: str
    seconds: float
    requests: int
    error: str = ""


@dataclass
class UserRun:
    """What one simulated user did: each step's time and requests, and its first error."""

    number: int
    steps: list[StepResult] = field(default_factory=list)
    finished: bool = False


class StepFailed(Exception):
    pass


def simulate_user(number: int, site: str, start: threading.Barrier, run: UserRun) -> None:
    """Sign in, link a car through the sandbox, load /vehicles/; record every step."""
    import requests

    from vehicle_auth.sandbox import driver

    counted = {"requests": 0}

    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        counted["requests"] += 1

    site_http, connect_http = requests.Session(), requests.Session()
    for session in (site_http, connect_http):
        session.hooks["response"].append(count)

    def expect(response: requests.Response, status: int, location: str = "") -> None:
        if response.status_code != status:
            raise StepFailed(f"HTTP {response.status_code}, expected {status}")
        if location and not response.headers.get("Location", "").startswith(location):
            raise StepFailed(f"redirected to {response.headers.get('Location')!r}")

    def sign_in() -> None:
        page = site_http.get(f"{site}/accounts/login/", timeout=TIMEOUT)
        expect(page, 200)
        token = CSRF_FIELD.search(page.text)
        if token is None:
            raise StepFailed("the sign-in form has no CSRF token")
        posted = site_http.post(
            f"{site}/accounts/login/",
            data={
                "username": f"load{number:03d}",
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
                "next": "/vehicles/",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        expect(posted, 302, "/vehicles/")

    state: dict[str, str] = {}

    def start_linking() -> None:
        response = site_http.get(f"{site}/vehicles/login/", allow_redirects=False, timeout=TIMEOUT)
        expect(response, 302, "http://127.0.0.1:")
        state["connect"] = response.headers["Location"]

    def connect() -> None:
        back = driver.complete_connect(
            state["connect"], email=f"load{number:03d}@example.com", session=connect_http
        )
        if not back.startswith(f"{site}/vehicles/callback/?code="):
            raise StepFailed(f"Connect sent the owner to {back[:80]!r}")
        state["callback"] = back

    def callback() -> None:
        response = site_http.get(state["callback"], allow_redirects=False, timeout=TIMEOUT)
        expect(response, 302, "/vehicles/")

    def vehicles() -> None:
        response = site_http.get(f"{site}/vehicles/", timeout=TIMEOUT)
        expect(response, 200)
        if "Volt" not in response.text:
            raise StepFailed("/vehicles/ does not list the linked car")

    start.wait()
    for name, step in zip(
        STEPS, (sign_in, start_linking, connect, callback, vehicles), strict=True
    ):
        counted["requests"] = 0
        began = time.perf_counter()
        try:
            step()
        except Exception as exc:  # any failure is this user's error, reported below
            error = f"{type(exc).__name__}: {exc}"[:200]
            run.steps.append(
                StepResult(name, time.perf_counter() - began, counted["requests"], error)
            )
            return
        run.steps.append(StepResult(name, time.perf_counter() - began, counted["requests"]))
    run.finished = True


def accounts_per_user(users: int) -> dict[int, int]:
    """How many accounts (any status) each simulated user holds, from the database."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    rows = (
        get_user_model()
        .objects.filter(username__startswith="load")
        .annotate(accounts=Count("smartcar_accounts"))
        .values_list("username", "accounts")
    )
    counts = {int(name.removeprefix("load")): accounts for name, accounts in rows}
    return {number: counts.get(number, 0) for number in range(users)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of the site")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--sandbox-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120, help="seconds for the whole run")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()

    with figure_output(args.json) as figures, scratch_database("load") as (url, where):
        setup_django(url, "bench.settings_bench")
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.db import connections

        password = make_password(PASSWORD)
        get_user_model().objects.bulk_create(
            get_user_model()(username=f"load{n:03d}", password=password) for n in range(args.users)
        )
        connections.close_all()
        site = Gunicorn(workers=args.workers, threads=args.threads)
        sandbox = Gunicorn(workers=args.sandbox_workers, threads=8)
        env = {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
            "BENCH_SITE_ORIGIN": site.url,
            "BENCH_SANDBOX_ORIGIN": sandbox.url,
        }
        runs = [UserRun(n) for n in range(args.users)]
        with sandbox.serving(env), site.serving(env):
            print(
                f"load test: {args.users} users at once; site on gunicorn ({args.workers} gthread "
                f"workers x {args.threads} threads), sandbox on another gunicorn "
                f"({args.sandbox_workers} workers); {where}"
            )
            start = threading.Barrier(args.users)
            threads = [
                threading.Thread(
                    target=simulate_user, args=(n, site.url, start, runs[n]), daemon=True
                )
                for n in range(args.users)
            ]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            ends_at = time.monotonic() + args.timeout
            for thread in threads:
                thread.join(max(0.0, ends_at - time.monotonic()))
            elapsed = time.perf_counter() - began
            late = sum(thread.is_alive() for thread in threads)
        # Stopping the servers ended whatever was still waiting on them.
        for thread in threads:
            thread.join(5)
        accounts = accounts_per_user(args.users)
        connections.close_all()

        by_step: dict[str, list[StepResult]] = defaultdict(list)
        for run in runs:
            for result in run.steps:
                by_step[result.step].append(result)
        total_requests = sum(r.requests for results in by_step.values() for r in results)
        errors = [r for results in by_step.values() for r in results if r.error]
        # A user stops at its first failure: each user not done is one error.
        error_count = sum(not run.finished for run in runs)
        print(f"  {'step':<20} {'users':>5} {'requests':>8} {'errors':>6} {'p50':>8} {'p95':>8}")
        p95 = {}
        for step in STEPS:
            results = by_step.get(step, [])
            times = [r.seconds for r in results if not r.error]
            p95[step] = percentile(times, 0.95)
            print(
                f"  {step:<20} {len(results):5d} {sum(r.requests for r in results):8d} "
                f"{sum(1 for r in results if r.error):6d} "
                f"{percentile(times, 0.5) * 1000:6.0f}ms {p95[step] * 1000:6.0f}ms"
            )
        print(
            f"  all: {total_requests} requests, {error_count} errors, "
            f"{sum(run.finished for run in runs)}/{args.users} users done in {elapsed:.1f} s"
        )
        for result in errors[:5]:
            print(f"  error in {result.step}: {result.error}")
        if late:
            print(f"  {late} users had not finished after {args.timeout:g} s")
        exactly_one = sum(1 for count in accounts.values() if count == 1)
        print(f"  users with exactly one Smartcar account: {exactly_one}/{args.users}")

        figures.append(
            Figure(
                f"load test, {args.users} users: errors",
                f"{error_count} in {total_requests} requests",
                "0",
                error_count == 0,
            )
        )
        figures.append(
            Figure(
                "load test: users with exactly one account",
                f"{exactly_one}/{args.users}",
                f"{args.users}/{args.users}",
                exactly_one == args.users,
            )
        )
        figures.append(
            Figure(
                "load test: p95 per step (ms)",
                ", ".join(f"{step} {p95[step] * 1000:.0f}" for step in STEPS),
            )
        )
    return 0 if error_count == 0 and exactly_one == args.users else 1


if __name__ == "__main__":
    sys.exit(main())
