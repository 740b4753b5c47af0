"""Entry points of the processes that tests/test_races.py starts (multiprocessing, spawn).

A spawned process imports this module before Django is set up, so it imports nothing from
Django or vehicle_auth at module level. Each process sets Django up with the test settings,
points its connection at the test database the parent uses, and reports what it saw
through a queue (never tokens' objects: plain strings).
"""

from __future__ import annotations

import os
import threading
from typing import Any


def _setup(database_name: str, settings_overrides: dict[str, Any]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings
    from django.db import connections

    django.setup()
    # The parent's test database ("test_..."), not the one named in DATABASE_URL.
    settings.DATABASES["default"]["NAME"] = database_name
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = database_name
    for name, value in settings_overrides.items():
        setattr(settings, name, value)


def get_vehicle_in_threads(
    database_name: str,
    settings_overrides: dict[str, Any],
    username: str,
    vehicle_id: str,
    threads: int,
    barrier: Any,
    results: Any,
) -> None:
    """`threads` threads each call get_vehicle once all processes are ready; each puts
    ("ok", access token) or ("error", repr) on `results`."""
    _setup(database_name, settings_overrides)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from vehicle_auth import get_vehicle

    user = get_user_model().objects.get(username=username)
    connection.close()
    start = threading.Barrier(threads)

    def call() -> None:
        try:
            start.wait(timeout=30)
            results.put(("ok", str(get_vehicle(user, vehicle_id).access_token)))
        except Exception as exc:
            results.put(("error", repr(exc)))
        finally:
            connection.close()

    barrier.wait(timeout=60)  # every process set up: race now
    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def bulk_refresh(
    database_name: str,
    settings_overrides: dict[str, Any],
    concurrency: int,
    barrier: Any,
    results: Any,
) -> None:
    """One `refresh_expiring_accounts` run, started once all processes are ready; puts
    ("ok", summary as a dict) or ("error", repr) on `results`."""
    _setup(database_name, settings_overrides)
    from django.db import connection

    from vehicle_auth.refresh import refresh_expiring_accounts

    barrier.wait(timeout=60)
    try:
        results.put(("ok", refresh_expiring_accounts(concurrency=concurrency).as_dict()))
    except Exception as exc:
        results.put(("error", repr(exc)))
    finally:
        connection.close()
