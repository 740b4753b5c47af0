"""Helpers for the reliability tests: an address nobody listens on, stored tokens, secrets."""

from __future__ import annotations

import socket
from typing import Any


def closed_origin() -> str:
    """An http origin on this machine where nothing listens: connections are refused.

    The port was free a moment ago (bound, then released); nothing in the suite binds a
    port without asking the system for a free one, so it stays closed.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def point_smartcar_at(settings: Any, origin: str) -> None:
    """Send every token and API call of the app to `origin` (Connect is left alone)."""
    settings.SMARTCAR_AUTH_ORIGIN = f"{origin}/oauth/token"
    settings.SMARTCAR_API_ORIGIN = origin


def stored_tokens(account: Any) -> tuple:
    """The account's tokens and expiries as the database holds them now."""
    account.refresh_from_db()
    return (
        str(account.access_token),
        str(account.refresh_token),
        account.access_expires_at,
        account.refresh_expires_at,
        account.status,
    )
