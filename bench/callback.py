"""Callback time with 5 vehicles and 100 ms of sandbox latency, against the 3-round-trip floor.

    .venv/bin/python bench/callback.py [--runs 10] [--latency 0.1] [--vehicles 5]
        [--sandbox-processes 2] [--json]

The callback makes 1 + 2 + 5 (+5 VIN) Smartcar calls; done one after another they would
take 8+ round trips. vehicle_auth runs independent calls side by side, so the floor is
3 round trips: the token, then /user beside /vehicles, then every car's attributes and VIN.
Prints the median callback time, the floor and their ratio (target at most 1.15).

The sandbox is served by `--sandbox-processes` processes of its own: Smartcar answers ten
simultaneous calls on many machines, where one Python process would answer them one after
another under its interpreter lock. Also printed: the callback without latency (the CPU
time of app and sandbox together, on the same machine) and the app's own CPU time per
callback (this process's, since the sandbox runs in others).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Figure, SandboxProcess, figure_output, point_app_at, setup_django

TARGET = 1.15


def time_callbacks(client: Any, runs: int, vehicles: int) -> list[tuple[float, float]]:
    """(wall time, this process's CPU time) of `runs` callbacks, after one to warm up."""
    from vehicle_auth.sandbox import driver

    timings = []
    for _ in range(runs + 1):
        start = client.get("/vehicles/login/")
        location = driver.complete_connect(
            start["Location"], email=f"{vehicles}-vehicles@smartcar.com"
        )
        parts = urlsplit(location)
        cpu, began = time.process_time(), time.perf_counter()
        response = client.get(f"{parts.path}?{parts.query}")
        timings.append((time.perf_counter() - began, time.process_time() - cpu))
        assert response.status_code == 302, response.content[:500]
    return timings[1:]  # the first run warms up connections and caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--vehicles", type=int, default=5)
    parser.add_argument("--sandbox-processes", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()

    with figure_output(args.json) as figures:
        database_url = setup_django()
        from django.contrib.auth import get_user_model
        from django.test import Client

        from vehicle_auth.sandbox import control

        with SandboxProcess(database_url, args.sandbox_processes) as sandbox:
            point_app_at(sandbox.url)
            user, _ = get_user_model().objects.get_or_create(username="bench")
            client = Client()
            client.force_login(user)
            # Without latency: what the app and the sandbox cost in CPU on this machine.
            baseline = statistics.median(
                wall for wall, _ in time_callbacks(client, args.runs, args.vehicles)
            )
            control.inject("*", latency=args.latency)
            timings = time_callbacks(client, args.runs, args.vehicles)

        median = statistics.median(wall for wall, _ in timings)
        app_cpu = statistics.median(cpu for _, cpu in timings)
        floor = 3 * args.latency
        ratio = median / floor
        print(
            f"callback, {args.vehicles} vehicles, {args.latency * 1000:.0f} ms latency per call, "
            f"median of {args.runs} runs; sandbox served by {args.sandbox_processes} process(es)"
        )
        print(f"  callback time     {median * 1000:6.0f} ms")
        print(f"  floor             {floor * 1000:6.0f} ms  (3 round trips)")
        print(f"  ratio             {ratio:6.2f}     (target <= {TARGET})")
        print(f"  without latency   {baseline * 1000:6.0f} ms  (app + sandbox CPU, same machine)")
        print(f"  app's own CPU     {app_cpu * 1000:6.0f} ms  (per callback, this process)")
        round_trips = (median - baseline) / args.latency
        print(
            f"  round trips       {round_trips:6.2f}     "
            "(latency-bound part / latency; sequential calls would give 8+)"
        )
        figures.append(
            Figure(
                f"callback ({args.vehicles} vehicles, {args.latency * 1000:.0f} ms latency) "
                "÷ 3-round-trip floor",
                f"{ratio:.2f} ({median * 1000:.0f} ÷ {floor * 1000:.0f} ms)",
                f"≤ {TARGET}",
                ratio <= TARGET,
            )
        )
        figures.append(
            Figure(
                "callback: round trips (latency-bound part ÷ latency)",
                f"{round_trips:.2f}",
            )
        )
        figures.append(
            Figure(
                "callback: CPU without latency (app + sandbox) / app's own CPU",
                f"{baseline * 1000:.0f} ms / {app_cpu * 1000:.0f} ms",
            )
        )


if __name__ == "__main__":
    main()
