"""Serve the project (sandbox included) on a loopback port; print its URL, then serve.

    python bench/_sandbox_server.py [PORT]

A fixed pool of threads answers the connections, and each keeps its database connection
(CONN_MAX_AGE=None), as a production server's workers do; Django's development server
would start a thread, and so open a database connection, for every connection (the SDK
opens one per call): that alone cost about 1.5 ms of CPU per answer on the benchmark
machine, which the figures would have charged to the app. Several such processes may share
the port (SO_REUSEPORT): the kernel spreads the connections between them.
"""

from __future__ import annotations

import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

THREADS = 16


def serve(port: int = 0) -> None:
    """Set Django up (DJANGO_SETTINGS_MODULE, default tests.settings), print the URL, serve."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class PooledServer(WSGIServer):
        """Answers each connection on a thread of a fixed pool, on a port it may share."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="sandbox")

        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

        def process_request(self, request: Any, client_address: Any) -> None:
            self.pool.submit(self._serve, request, client_address)

        def _serve(self, request: Any, client_address: Any) -> None:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    settings.DATABASES["default"]["CONN_MAX_AGE"] = None
    server = PooledServer(("127.0.0.1", port), QuietHandler, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
