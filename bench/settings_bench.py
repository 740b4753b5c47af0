"""Settings of the gunicorn benchmarks: the test suite's, plus a bench-only URL, no rate limits.

The servers learn their addresses from the environment: BENCH_SITE_ORIGIN (where the app
is served; Connect sends owners back there) and BENCH_SANDBOX_ORIGIN (the sandbox's server).
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

ROOT_URLCONF = "bench.urls_bench"

# A load test signs in and links many times a minute from one address.
VEHICLE_AUTH_RATE_LIMITS = dict.fromkeys(("login", "login_ip", "callback", "callback_ip"), None)

# Workers keep their database connections between requests, as a production site does.
DATABASES["default"]["CONN_MAX_AGE"] = 60

_site = os.environ.get("BENCH_SITE_ORIGIN", "http://127.0.0.1:8000")
_sandbox = os.environ.get("BENCH_SANDBOX_ORIGIN", _site)
SMARTCAR_CLIENT_ID = "bench-client"
SMARTCAR_CLIENT_SECRET = "bench-secret"
SMARTCAR_REDIRECT_URI = f"{_site}/vehicles/callback/"
SMARTCAR_CONNECT_ORIGIN = f"{_sandbox}/sandbox"
SMARTCAR_AUTH_ORIGIN = f"{_sandbox}/sandbox/oauth/token"
SMARTCAR_API_ORIGIN = f"{_sandbox}/sandbox"
SMARTCAR_SANDBOX_APPLICATIONS = [
    {
        "client_id": SMARTCAR_CLIENT_ID,
        "client_secret": SMARTCAR_CLIENT_SECRET,
        "redirect_uris": [SMARTCAR_REDIRECT_URI],
        "name": "Benchmark",
    }
]
