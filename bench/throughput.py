"""Throughput of /vehicles/login/ under gunicorn, against a bare Django view that only redirects.

    .venv/bin/python bench/throughput.py [--seconds 5] [--rounds 3] [--connections 8]
        [--workers 2] [--threads 4] [--json]

Both URLs are served by the same gunicorn (gthread workers, the demo project with
bench/settings_bench.py: a scratch PostgreSQL database when one is reachable, else
SQLite) and driven by the same load generator for the same time: `--connections`
keep-alive connections, each sending its next request as soon as the last is answered,
with the session cookie of a signed-in user. The rounds alternate the URLs so that any
drift of the machine hits both alike. Target: /vehicles/login/ at least 0.8 x the bare view.

Also measured, for information: a view that only redirects but needs a signed-in user
(`login_required`), which separates what Django's sessions and auth cost on every
signed-in page from what vehicle_auth's view adds.

The load generator is a few lines over raw sockets rather than `requests`, so its own CPU
time (on the same machine) stays small next to the server's.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Figure, Gunicorn, figure_output, scratch_database, setup_django

TARGET = 0.8
LOGIN = "/vehicles/login/"
BARE = "/bench/redirect/"
SIGNED_IN = "/bench/redirect-signed-in/"


@dataclass
class Tally:
    """Answers with the expected status (302), the others, and how long it took."""

    answered: int = 0
    errors: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.answered += other.answered
        self.errors += other.errors
        self.seconds += other.seconds
        self.statuses.update(other.statuses)

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


class KeepAliveClient:
    """One HTTP/1.1 connection that sends one GET at a time and reads the whole answer."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def get(self) -> int:
        """The status of one answer; reconnects when the server closed the connection."""
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            rest += chunk
        self.buffer = rest[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def drive(port: int, path: str, cookie: str, seconds: float, connections: int) -> Tally:
    """Keep `connections` connections busy with GET `path` for `seconds`; what came back."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
        "User-Agent: vehicle_auth-bench\r\n\r\n"
    ).encode()
    tally = Tally()
    lock = threading.Lock()
    began = time.monotonic()
    ends_at = began + seconds

    def run() -> None:
        client = KeepAliveClient(port, request)
        mine = Tally()
        while time.monotonic() < ends_at:
            try:
                status = client.get()
            except OSError:
                mine.errors += 1
                client.close()
                continue
            mine.statuses[status] += 1
            if status == 302:
                mine.answered += 1
            else:
                mine.errors += 1
        client.close()
        with lock:
            tally.add(mine)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)  # a hung server must not hang the benchmark
    # Until the last answer came in: requests sent just before the end count in full.
    tally.seconds = time.monotonic() - began
    return tally


def signed_in_cookie() -> str:
    """The session cookie of a user signed in through Django's own login (in the database)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user("bench", password="bench-password")
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="per URL and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args()

    with figure_output(args.json) as figures, scratch_database("throughput") as (url, where):
        setup_django(url, "bench.settings_bench")
        from django.db import connections

        cookie = signed_in_cookie()
        connections.close_all()
        env = {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings_bench"}
        paths = (BARE, SIGNED_IN, LOGIN)
        done = {path: Tally() for path in paths}
        server = Gunicorn(workers=args.workers, threads=args.threads)
        with server.serving(env):
            print(
                f"gunicorn: {args.workers} gthread workers x {args.threads} threads; {where}; "
                f"{args.connections} keep-alive connections, {args.rounds} x {args.seconds:g} s "
                "per URL"
            )
            began = time.process_time()
            for path in paths:  # warm-up: workers import, connect, fill their caches
                drive(server.port, path, cookie, 1, args.connections)
            for _ in range(args.rounds):
                for path in paths:
                    done[path].add(drive(server.port, path, cookie, args.seconds, args.connections))
            generator_cpu = time.process_time() - began
        rate = {path: done[path].rate for path in paths}
        for path in paths:
            print(
                f"  {path:<28} {rate[path]:8.0f} requests/s  "
                f"(statuses {dict(done[path].statuses)}, errors {done[path].errors})"
            )
        wall = sum(tally.seconds for tally in done.values()) + len(paths)  # + the warm-ups
        print(f"  load generator CPU: {generator_cpu / wall:.0%} of one core")
        ratio = rate[LOGIN] / rate[BARE] if rate[BARE] else 0.0
        signed_in = rate[LOGIN] / rate[SIGNED_IN] if rate[SIGNED_IN] else 0.0
        errors = sum(tally.errors for tally in done.values())
        print(f"  ratio {ratio:.2f} (target >= {TARGET}); to a signed-in redirect: {signed_in:.2f}")
        figures.append(
            Figure(
                "/vehicles/login/ throughput ÷ bare redirect view (gunicorn)",
                f"{ratio:.2f} ({rate[LOGIN]:.0f} ÷ {rate[BARE]:.0f} req/s)",
                f"≥ {TARGET}",
                ratio >= TARGET and errors == 0,
            )
        )
        figures.append(
            Figure(
                "/vehicles/login/ throughput ÷ signed-in redirect view",
                f"{signed_in:.2f} ({rate[LOGIN]:.0f} ÷ {rate[SIGNED_IN]:.0f} req/s)",
            )
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
