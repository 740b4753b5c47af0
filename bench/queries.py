"""Database queries per page, and what `get_vehicle` costs on a fresh token.

    .venv/bin/python bench/queries.py [--json]

Django's test client drives the demo project in this process (tests.settings on a scratch
SQLite database, like `make test`), so CaptureQueriesContext sees every query of a page;
the sandbox is served by a separate process on the same database, so its own queries are
not counted and the app's Smartcar calls go over real HTTP. Each page is measured once,
after the same page was loaded once (what a visitor meets, not a cold start).

The targets are the budgets the test suite asserts (tests/test_flow.py, test_admin.py,
test_tokens.py): a page's queries must not grow with the number of vehicles or accounts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Figure, SandboxProcess, figure_output, point_app_at, setup_django

LOGIN = "/vehicles/login/"
INDEX = "/vehicles/"
ADMIN_ACCOUNTS = "/admin/vehicle_auth/smartcaraccount/"


def count_queries(request: Callable[[], Any]) -> tuple[int, Any]:
    """How many queries `request()` made on the default database, and what it returned."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = request()
    return len(queries), result


def signed_in_client(username: str) -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(username, password="bench-password")
    client = Client()
    client.force_login(user)
    return user, client


def link(client: Any, email: str) -> tuple[int, int]:
    """Link `email`'s cars through the sandbox's Connect: (queries of the callback, cars)."""
    from vehicle_auth.models import Vehicle
    from vehicle_auth.sandbox import driver

    start = client.get(LOGIN)
    location = urlsplit(driver.complete_connect(start["Location"], email=email))
    queries, response = count_queries(lambda: client.get(f"{location.path}?{location.query}"))
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == INDEX, response["Location"]
    return queries, Vehicle.objects.filter(account__user=response.wsgi_request.user).count()


def page_queries(client: Any, url: str) -> int:
    client.get(url)  # once before: sessions, caches and the like as a visitor meets them
    queries, response = count_queries(lambda: client.get(url))
    assert response.status_code in (200, 302), (url, response.status_code)
    return queries


def thousand_accounts() -> None:
    """1,000 users with an account of 3 vehicles each, as tests/test_admin.py builds them."""
    from tests.factories import create_bulk_accounts

    create_bulk_accounts(1000)


def measure(figures: list[Figure]) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    import vehicle_auth
    from vehicle_auth.models import SmartcarAccount, Vehicle
    from vehicle_auth.sandbox import control

    def row(name: str, queries: int, budget: int, note: str = "") -> None:
        print(f"  {name:<40} {queries:3d} queries (budget {budget}){note}")
        figures.append(Figure(f"queries: {name}", str(queries), f"≤ {budget}", queries <= budget))

    one, client = signed_in_client("one-car")
    row("GET /vehicles/login/", page_queries(client, LOGIN), 3)
    for email, budget in (("1-vehicles@smartcar.com", 15), ("20-vehicles@smartcar.com", 15)):
        _, other_client = signed_in_client(email.split("@")[0])
        queries, cars = link(other_client, email)
        row(f"callback, {cars} vehicle{'s' if cars > 1 else ''}", queries, budget)
    queries, cars = link(client, "owner@example.com")
    row(f"GET /vehicles/, {cars} vehicle", page_queries(client, INDEX), 5)
    _, fifty = signed_in_client("fifty-cars")
    _, cars = link(fifty, "50-vehicles@smartcar.com")
    row(f"GET /vehicles/, {cars} vehicles", page_queries(fifty, INDEX), 5)

    thousand_accounts()
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "password")
    admin_client = Client()
    admin_client.force_login(admin)
    accounts = SmartcarAccount.objects.count()
    row(f"admin changelist, {accounts:,} accounts", page_queries(admin_client, ADMIN_ACCOUNTS), 10)

    vehicle_id = Vehicle.objects.filter(account__user=one).values_list("smartcar_id", flat=True)[0]
    before = control.request_count()
    queries, car = count_queries(lambda: vehicle_auth.get_vehicle(one, vehicle_id))
    calls = control.request_count() - before
    assert car.attributes().make  # the token it carries works
    print(f"  get_vehicle, fresh token: {queries} queries, {calls} HTTP calls to Smartcar")
    figures.append(Figure("get_vehicle (fresh token): HTTP calls", str(calls), "0", calls == 0))
    figures.append(Figure("get_vehicle (fresh token): queries", str(queries), "≤ 1", queries <= 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()
    with figure_output(args.json) as figures:
        database_url = setup_django()
        with SandboxProcess(database_url) as sandbox:
            point_app_at(sandbox.url)
            print("queries per page (SQLite; the sandbox in its own process):")
            measure(figures)


if __name__ == "__main__":
    main()
