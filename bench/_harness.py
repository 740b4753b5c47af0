"""Shared set-up of the benchmarks: Django on a scratch database, a sandbox in its own process.

Smartcar runs on other machines; serving the sandbox from a separate process keeps its
own CPU time from competing with the app's for one interpreter lock, as it would not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(database_url: str | None = None) -> str:
    """Configure Django (tests settings) on a fresh database; its URL."""
    if database_url is None:
        database_url = os.environ.get("BENCH_DATABASE_URL") or (
            f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}"
        )
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return database_url


class SandboxProcess:
    """`python bench/_sandbox_server.py` on the same database, on a free loopback port."""

    def __init__(self, database_url: str, processes: int = 1) -> None:
        env = {**os.environ, "DATABASE_URL": database_url}
        self.processes: list[subprocess.Popen[str]] = []
        port = "0"
        for _ in range(processes):
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "_sandbox_server.py"), port],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.processes.append(process)
            line = process.stdout.readline() if process.stdout else ""
            if not line.startswith("http://"):
                self.stop()
                raise RuntimeError(f"the sandbox server did not start: {line!r}")
            self.url = line.strip()
            port = self.url.rsplit(":", 1)[1]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def point_app_at(base: str, client_id: str = "bench-client", secret: str = "bench-secret") -> str:
    """Register an application in the sandbox and point vehicle_auth at it; the redirect URI."""
    from django.conf import settings

    from vehicle_auth.sandbox import grants

    redirect_uri = "http://testserver/vehicles/callback/"
    settings.SMARTCAR_CLIENT_ID = client_id
    settings.SMARTCAR_CLIENT_SECRET = secret
    settings.SMARTCAR_REDIRECT_URI = redirect_uri
    settings.SMARTCAR_CONNECT_ORIGIN = f"{base}/sandbox"
    settings.SMARTCAR_AUTH_ORIGIN = f"{base}/sandbox/oauth/token"
    settings.SMARTCAR_API_ORIGIN = f"{base}/sandbox"
    # A benchmark links many times a minute from one user and address.
    settings.VEHICLE_AUTH_RATE_LIMITS = dict.fromkeys(
        ("login", "login_ip", "callback", "callback_ip"), None
    )
    grants.register_application(client_id, secret, [redirect_uri], "Benchmark")
    return redirect_uri
