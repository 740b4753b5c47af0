"""Serve the project (sandbox included) on a free loopback port; print its URL, then serve."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class SharedPortServer(ThreadedWSGIServer):
    """Several processes may serve one port (SO_REUSEPORT): the kernel spreads connections."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = SharedPortServer(("127.0.0.1", port), QuietHandler, allow_reuse_address=True)
server.set_app(WSGIHandler())
print(f"http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
