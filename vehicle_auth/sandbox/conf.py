"""Typed access to the sandbox's settings, read when accessed (so override_settings works).

A value stored at run time through `vehicle_auth.sandbox.control.configure()` wins over the
Django setting, so tests and benchmarks can change a running sandbox, even one served by
another process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "ENABLED": False,
    # Serve the sandbox even with DEBUG off (a shared staging site, a load test).
    "ALLOW_WITHOUT_DEBUG": False,
    # Applications registered with the sandbox: client_id, client_secret, redirect_uris, name.
    "APPLICATIONS": [],
    "ACCESS_TOKEN_LIFETIME": 2 * 60 * 60,
    "REFRESH_TOKEN_LIFETIME": 60 * 24 * 60 * 60,
    "CODE_LIFETIME": 10 * 60,
    # How long a rotated refresh token keeps working (Smartcar: about a minute).
    "ROTATION_GRACE": 60,
    # Faults applied to every request of an endpoint: {"token": {"latency": 0.1}, "*": {...}}
    "FAULTS": {},
    # The longest a "hang" fault holds a request, so a test run always ends.
    "MAX_HANG": 60,
}

RUNTIME_KEYS = (
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "CODE_LIFETIME",
    "ROTATION_GRACE",
)


# The runtime overrides of the block being run (see `runtime_snapshot`), else None.
_snapshot: ContextVar[dict[str, Any] | None] = ContextVar("sandbox_runtime", default=None)


def get(name: str) -> Any:
    """The value of `SMARTCAR_SANDBOX_<name>`: runtime override, Django setting or default."""
    if name in RUNTIME_KEYS:
        overrides = _snapshot.get()
        if overrides is None:
            from vehicle_auth.sandbox.models import RuntimeSetting

            overrides = dict(RuntimeSetting.objects.filter(key=name).values_list("key", "value"))
        if name in overrides:
            return overrides[name]
    return getattr(settings, f"SMARTCAR_SANDBOX_{name}", DEFAULTS[name])


@contextmanager
def runtime_snapshot() -> Iterator[None]:
    """In the block, `get()` answers from every runtime override read once, on entering it.

    The token endpoint needs up to three of them: one query instead of three, made before
    its transaction, so that SQLite's write lock is held for fewer statements. Nothing
    outlives the block: the next request reads them afresh, so `configure()` still takes
    effect at once, from any process.
    """
    from vehicle_auth.sandbox.models import RuntimeSetting

    token = _snapshot.set(dict(RuntimeSetting.objects.values_list("key", "value")))
    try:
        yield
    finally:
        _snapshot.reset(token)


def enabled() -> bool:
    return bool(get("ENABLED"))
