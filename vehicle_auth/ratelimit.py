"""Rate limits on starting a link and on the callback, per user and per IP, in Django's cache.

A fixed-window counter: one cache key per (limit, who, window), created with `cache.add`
and counted with `cache.incr`, both atomic on Django's cache backends. Counters live in the
cache named by VEHICLE_AUTH_RATE_LIMIT_CACHE ("default"): with several worker processes it
must be a cache they share (Redis, Memcached, the database cache), or each process counts
on its own and the effective limit grows with the number of processes.

If the cache cannot be reached, requests are let through (and a warning is logged): a
broken cache must not stop people from linking their cars.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from vehicle_auth.conf import conf

logger = logging.getLogger(__name__)

# The views that are limited. "<view>" limits each signed-in user, "<view>_ip" each client
# address (all users behind it together, and anonymous visitors of the callback).
VIEWS = ("login", "callback")
DEFAULT_RATES: dict[str, str | None] = {
    "login": "10/m",
    "login_ip": "30/m",
    "callback": "20/m",
    "callback_ip": "60/m",
}
RATE_NAMES = tuple(DEFAULT_RATES)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]*)\s*([smhd])\s*$")
KEY_PREFIX = "vehicle_auth:ratelimit"
View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Rate:
    """At most `limit` requests per `period` seconds."""

    limit: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse "10/m", "100/15m", "5/30s" or "1000/d"; raises ValueError otherwise."""
        match = _RATE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a rate such as '10/m' or '100/15m'")
        count, multiplier, unit = match.groups()
        limit, period = int(count), int(multiplier or 1) * _UNITS[unit]
        if limit < 1 or period < 1:
            raise ValueError(f"{text!r} allows nothing: use None to turn a limit off")
        return cls(limit, period)


def rate_settings() -> dict[str, Any]:
    """VEHICLE_AUTH_RATE_LIMITS merged over the defaults (unparsed)."""
    configured = getattr(settings, "VEHICLE_AUTH_RATE_LIMITS", None) or {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("VEHICLE_AUTH_RATE_LIMITS must be a dict.")
    return {**DEFAULT_RATES, **configured}


def rates() -> dict[str, Rate | None]:
    """The limits in force, by name; None where a limit is turned off."""
    parsed: dict[str, Rate | None] = {}
    for name, value in rate_settings().items():
        if name not in DEFAULT_RATES:
            raise ImproperlyConfigured(f"VEHICLE_AUTH_RATE_LIMITS has an unknown key {name!r}.")
        try:
            parsed[name] = None if value is None else Rate.parse(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"VEHICLE_AUTH_RATE_LIMITS[{name!r}]: {exc}.") from exc
    return parsed


def cache_alias() -> str:
    return getattr(settings, "VEHICLE_AUTH_RATE_LIMIT_CACHE", "default")


def proxy_count() -> int:
    """How many reverse proxies in front of the site append to X-Forwarded-For (default 0)."""
    return int(getattr(settings, "VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT", 0))


def client_ip(request: HttpRequest) -> str:
    """The address to count a request against.

    REMOTE_ADDR, unless VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT says that N trusted proxies
    stand in front of the site: then the N-th address from the right of X-Forwarded-For,
    the one the outermost of them saw (what a client writes into the header is to its left,
    so it cannot pick its own bucket). IPv6 addresses count per /64, the block one host
    usually holds.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = proxy_count()
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Usage:
    """One request counted against one limit."""

    count: int
    limit: int
    retry_after: int  # seconds until the window ends

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def hit(name: str, who: str, rate: Rate, *, now: float | None = None) -> Usage:
    """Count one request of `who` against the limit `name`; raises what the cache raises."""
    now = time.time() if now is None else now
    window = int(now // rate.period)
    # Hashed: keys stay short and valid for memcached whatever `who` holds (IPv6, ids).
    tag = hashlib.sha256(who.encode()).hexdigest()[:32]
    key = f"{KEY_PREFIX}:{name}:{rate.period}:{tag}:{window}"
    cache = caches[cache_alias()]
    timeout = rate.period + 1  # a little past the window's end; the next window has its key
    cache.add(key, 0, timeout=timeout)
    try:
        count = cache.incr(key)
    except ValueError:
        # Evicted (or expired) between add and incr: this request opens the window again.
        cache.set(key, 1, timeout=timeout)
        count = 1
    retry_after = max(1, math.ceil((window + 1) * rate.period - now))
    return Usage(count=count, limit=rate.limit, retry_after=retry_after)


def check(request: HttpRequest, view: str) -> int | None:
    """Count this request of `view`; seconds to wait when a limit is exceeded, else None."""
    limits = rates()
    counted: list[tuple[str, str, Rate]] = []
    user = getattr(request, "user", None)
    user_rate = limits[view]
    if user_rate is not None and user is not None and user.is_authenticated:
        counted.append((view, f"user:{user.pk}", user_rate))
    ip_rate = limits[f"{view}_ip"]
    if ip_rate is not None:
        counted.append((f"{view}_ip", f"ip:{client_ip(request)}", ip_rate))
    waits = []
    for name, who, rate in counted:
        try:
            usage = hit(name, who, rate)
        except Exception:
            logger.warning(
                "Rate limit %s not applied: the cache %r failed", name, cache_alias(), exc_info=True
            )
            continue
        if usage.exceeded:
            if usage.count == usage.limit + 1:  # once per window, not once per request
                logger.warning("Rate limit %s (%s/%ss) exceeded", name, rate.limit, rate.period)
            waits.append(usage.retry_after)
    return max(waits) if waits else None


def too_many_requests(request: HttpRequest, view: str, retry_after: int) -> HttpResponse:
    """The 429 page, with a Retry-After header."""
    response = render(
        request,
        "vehicle_auth/rate_limited.html",
        {
            "base_template": conf.BASE_TEMPLATE,
            "view": view,
            "retry_after": retry_after,
            "retry_minutes": math.ceil(retry_after / 60),
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def rate_limit(view: str) -> Callable[[View], View]:
    """Decorate a view with the limits "<view>" (per user) and "<view>_ip" (per address)."""
    if view not in VIEWS:
        raise ValueError(f"Unknown rate-limited view {view!r}; use one of {VIEWS}.")

    def decorator(function: View) -> View:
        @functools.wraps(function)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            retry_after = check(request, view)
            if retry_after is not None:
                return too_many_requests(request, view, retry_after)
            return function(request, *args, **kwargs)

        return wrapped

    return decorator
