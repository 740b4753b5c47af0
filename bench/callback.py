"""Callback time with 5 vehicles and 100 ms of sandbox latency, against the 3-round-trip floor.

    .venv/bin/python bench/callback.py [--runs 10] [--latency 0.1] [--vehicles 5]

The callback makes 1 + 2 + 5 (+5 VIN) Smartcar calls; done one after another they would
take 8+ round trips. vehicle_auth runs independent calls side by side, so the floor is
3 round trips: the token, then /user beside /vehicles, then every car's attributes and VIN.
Prints the median callback time, the floor and their ratio (target at most 1.15).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    database = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{database}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def serve() -> str:
    """Serve the project (sandbox included) on a threaded server; its base URL."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--vehicles", type=int, default=5)
    args = parser.parse_args()

    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from vehicle_auth.sandbox import control, driver, grants

    base = serve()
    settings.SMARTCAR_CLIENT_ID = "bench-client"
    settings.SMARTCAR_CLIENT_SECRET = "bench-secret"
    settings.SMARTCAR_REDIRECT_URI = f"{base}/vehicles/callback/"
    settings.SMARTCAR_CONNECT_ORIGIN = f"{base}/sandbox"
    settings.SMARTCAR_AUTH_ORIGIN = f"{base}/sandbox/oauth/token"
    settings.SMARTCAR_API_ORIGIN = f"{base}/sandbox"
    grants.register_application(
        "bench-client", "bench-secret", [settings.SMARTCAR_REDIRECT_URI], "Benchmark"
    )
    control.inject("*", latency=args.latency)

    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    timings = []
    for _ in range(args.runs):
        start = client.get("/vehicles/login/")
        location = driver.complete_connect(
            start["Location"], email=f"{args.vehicles}-vehicles@smartcar.com"
        )
        parts = urlsplit(location)
        began = time.perf_counter()
        response = client.get(f"{parts.path}?{parts.query}")
        timings.append(time.perf_counter() - began)
        assert response.status_code == 302, response.content[:500]

    median = statistics.median(timings)
    floor = 3 * args.latency
    print(
        f"callback, {args.vehicles} vehicles, {args.latency * 1000:.0f} ms latency, "
        f"{args.runs} runs"
    )
    print(
        f"  median {median * 1000:.0f} ms  (min {min(timings) * 1000:.0f}, "
        f"max {max(timings) * 1000:.0f})"
    )
    print(f"  floor  {floor * 1000:.0f} ms  (3 round trips)")
    print(f"  ratio  {median / floor:.2f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
