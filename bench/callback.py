"""Callback time with 5 vehicles and 100 ms of sandbox latency, against the 3-round-trip floor.

    .venv/bin/python bench/callback.py [--runs 10] [--latency 0.1] [--vehicles 5]

The callback makes 1 + 2 + 5 (+5 VIN) Smartcar calls; done one after another they would
take 8+ round trips. vehicle_auth runs independent calls side by side, so the floor is
3 round trips: the token, then /user beside /vehicles, then every car's attributes and VIN.
Prints the median callback time, the floor and their ratio (target at most 1.15).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SandboxProcess, point_app_at, setup_django


def time_callbacks(client, runs: int, vehicles: int) -> list[float]:
    from vehicle_auth.sandbox import driver

    timings = []
    for _ in range(runs + 1):
        start = client.get("/vehicles/login/")
        location = driver.complete_connect(
            start["Location"], email=f"{vehicles}-vehicles@smartcar.com"
        )
        parts = urlsplit(location)
        began = time.perf_counter()
        response = client.get(f"{parts.path}?{parts.query}")
        timings.append(time.perf_counter() - began)
        assert response.status_code == 302, response.content[:500]
    return timings[1:]  # the first run warms up connections and caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--vehicles", type=int, default=5)
    args = parser.parse_args()

    database_url = setup_django()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from vehicle_auth.sandbox import control

    with SandboxProcess(database_url) as sandbox:
        point_app_at(sandbox.url)
        user, _ = get_user_model().objects.get_or_create(username="bench")
        client = Client()
        client.force_login(user)
        # Without latency: what the app and the sandbox cost in CPU on this machine.
        baseline = statistics.median(time_callbacks(client, args.runs, args.vehicles))
        control.inject("*", latency=args.latency)
        timings = time_callbacks(client, args.runs, args.vehicles)

    median = statistics.median(timings)
    floor = 3 * args.latency
    print(
        f"callback, {args.vehicles} vehicles, {args.latency * 1000:.0f} ms latency per call, "
        f"median of {args.runs} runs"
    )
    print(f"  callback time     {median * 1000:6.0f} ms")
    print(f"  floor             {floor * 1000:6.0f} ms  (3 round trips)")
    print(f"  ratio             {median / floor:6.2f}     (target <= 1.15)")
    print(f"  without latency   {baseline * 1000:6.0f} ms  (CPU of app + sandbox, same machine)")
    print(
        f"  round trips       {(median - baseline) / args.latency:6.2f}     "
        "(latency-bound part / latency; sequential calls would give 8+)"
    )


if __name__ == "__main__":
    main()
