"""Shared set-up of the benchmarks: Django on a scratch database, servers in their own processes.

Smartcar runs on other machines; serving the sandbox from a separate process keeps its
own CPU time from competing with the app's for one interpreter lock, as it would not.
Every script prints its figures for people, or with `--json` as one JSON object on
stdout (their details then go to stderr) for `bench/run_all.py`, which prints the table.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Where `make bench` looks for PostgreSQL when DATABASE_URL names none (CI's server).
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One row of the table: what was measured, against which target."""

    name: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: a figure given for information, with no target


@contextmanager
def figure_output(as_json: bool) -> Iterator[list[Figure]]:
    """Collect a script's figures; with `as_json`, print them as JSON on stdout at the end.

    Meanwhile print() goes to stderr, so the human-readable details still show.
    """
    figures: list[Figure] = []
    stdout = sys.stdout
    if as_json:
        sys.stdout = sys.stderr
    try:
        yield figures
    finally:
        sys.stdout = stdout
    if as_json:
        print(json.dumps({"figures": [asdict(f) for f in figures]}), flush=True)


# --- Django and databases ---------------------------------------------------------------------


def setup_django(database_url: str | None = None, settings_module: str = "tests.settings") -> str:
    """Configure Django on a fresh database (migrated); its URL.

    By default a temporary SQLite file, removed when this process exits.
    """
    if database_url is None:
        database_url = os.environ.get("BENCH_DATABASE_URL")
    if database_url is None:
        folder = tempfile.mkdtemp(prefix="vehicle_auth-bench-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        database_url = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    # Real Smartcar credentials in the environment would point the app away from the sandbox.
    for name in ("SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET", "SMARTCAR_REDIRECT_URI"):
        os.environ.pop(name, None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return database_url


def _postgres_server_url() -> str:
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        return configured
    return os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def scratch_database(name: str, *, postgresql: bool = True) -> Iterator[tuple[str, str]]:
    """A new empty database, dropped afterwards: (its URL, a description for the report).

    On the PostgreSQL server of DATABASE_URL (else 127.0.0.1:5432, user postgres) as
    `bench_<name>_<random>`; when that server cannot be reached, or with
    `postgresql=False`, a temporary SQLite file.
    """
    server = _postgres_server_url() if postgresql else ""
    admin = None
    if server:
        import psycopg

        try:
            admin = psycopg.connect(
                urlsplit(server)._replace(scheme="postgresql").geturl(),
                autocommit=True,
                connect_timeout=3,
            )
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"PostgreSQL unreachable at {_safe(server)} ({reason}): using SQLite")
    if admin is None:
        with tempfile.TemporaryDirectory(prefix="vehicle_auth-bench-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3", "SQLite (WAL, temporary file)"
        return
    database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            yield (
                urlsplit(server)._replace(path=f"/{database}").geturl(),
                f"PostgreSQL {admin.info.server_version // 10000} (scratch database {database})",
            )
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _safe(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{parts.username or ''}@{host}{port}").geturl()


# --- servers ----------------------------------------------------------------------------------


class SandboxProcess:
    """`python bench/_sandbox_server.py` on the same database, on a free loopback port.

    With `processes` > 1 they share the port and the kernel spreads connections among them.
    """

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
            _stop(process)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Gunicorn:
    """gunicorn (gthread workers) serving the demo project on a loopback port of its own.

    The listening socket is opened here and handed over (`--bind fd://N`), so the port is
    known before the server starts (to put in the settings of another server) and nothing
    else can take it meanwhile.
    """

    def __init__(self, *, workers: int, threads: int, startup_timeout: float = 60) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.threads = workers, threads
        self.startup_timeout = startup_timeout

    @contextmanager
    def serving(self, env: dict[str, str]) -> Iterator[Gunicorn]:
        """Serve with these environment variables added (DATABASE_URL, settings...)."""
        fd = self.socket.fileno()
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "project.wsgi:application",
            f"--bind=fd://{fd}",
            f"--workers={self.workers}",
            "--worker-class=gthread",
            f"--threads={self.threads}",
            "--keep-alive=10",
            "--graceful-timeout=5",
            "--log-level=warning",
            "--no-control-socket",
        ]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, pass_fds=(fd,))
        try:
            self._wait_until_ready(process)
            yield self
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _stop(process)
            self.socket.close()

    def _wait_until_ready(self, process: subprocess.Popen) -> None:
        import requests

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {process.returncode}")
            try:
                requests.get(f"{self.url}/accounts/login/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {self.startup_timeout:g} s")


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


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile of `values` (nearest rank); 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
