"""System checks for vehicle_auth's settings. Ids are stable; retired ids stay reserved here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.urls import Resolver404, resolve

from vehicle_auth import crypto, ratelimit
from vehicle_auth.conf import conf

CALLBACK_VIEW = "vehicle_auth:callback"
MODES = ("live", "test", "simulated")


@checks.register()
def check_encryption_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    problem = crypto.validate_keys(conf.ENCRYPTION_KEYS)
    if problem is None:
        return []
    return [
        checks.Error(
            f"VEHICLE_AUTH_ENCRYPTION_KEYS cannot encrypt tokens: {problem}.",
            hint=(
                "Set VEHICLE_AUTH_ENCRYPTION_KEYS to a list of Fernet keys, newest first; "
                "generate one with Fernet.generate_key()."
            ),
            id="vehicle_auth.E001",
        )
    ]


@checks.register()
def check_credentials(**kwargs: Any) -> list[checks.CheckMessage]:
    missing = [
        name
        for name, value in (
            ("SMARTCAR_CLIENT_ID", conf.SMARTCAR_CLIENT_ID),
            ("SMARTCAR_CLIENT_SECRET", conf.SMARTCAR_CLIENT_SECRET),
            ("SMARTCAR_REDIRECT_URI", conf.SMARTCAR_REDIRECT_URI),
        )
        if not value
    ]
    if not missing:
        return []
    return [
        checks.Error(
            f"Smartcar credentials are missing: {', '.join(missing)}.",
            hint="Copy them from the Smartcar dashboard into these settings.",
            id="vehicle_auth.E002",
        )
    ]


@checks.register(checks.Tags.urls)
def check_redirect_uri(**kwargs: Any) -> list[checks.CheckMessage]:
    uri = conf.SMARTCAR_REDIRECT_URI
    if not uri:
        return []  # E002 reports it
    parts = urlsplit(uri)
    try:
        match = resolve(parts.path)
    except Resolver404:
        match = None
    if parts.scheme in {"http", "https"} and match and match.view_name == CALLBACK_VIEW:
        return []
    return [
        checks.Error(
            f"SMARTCAR_REDIRECT_URI {uri!r} does not lead to vehicle_auth's callback view.",
            hint=(
                "Use the absolute URL of reverse('vehicle_auth:callback'), e.g. "
                "https://example.com/vehicles/callback/, and register it with Smartcar."
            ),
            id="vehicle_auth.E003",
        )
    ]


@checks.register()
def check_mode(**kwargs: Any) -> list[checks.CheckMessage]:
    mode = conf.SMARTCAR_MODE
    if mode not in MODES:
        return [
            checks.Error(
                f"SMARTCAR_MODE is {mode!r}.",
                hint="Use 'live' for real cars, 'test' or 'simulated' while developing.",
                id="vehicle_auth.E004",
            )
        ]
    if mode != "live" and not settings.DEBUG:
        return [
            checks.Warning(
                f"SMARTCAR_MODE is {mode!r} while DEBUG is off: users can only link test cars.",
                hint="Set SMARTCAR_MODE = 'live' in production.",
                id="vehicle_auth.W001",
            )
        ]
    return []


@checks.register()
def check_numbers(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for name, value in (
        ("VEHICLE_AUTH_REQUEST_TIMEOUT", conf.REQUEST_TIMEOUT),
        ("VEHICLE_AUTH_MAX_PARALLEL_REQUESTS", conf.MAX_PARALLEL_REQUESTS),
        ("VEHICLE_AUTH_ATTEMPT_LIFETIME", conf.ATTEMPT_LIFETIME),
    ):
        if value <= 0:
            errors.append(
                checks.Error(
                    f"{name} must be positive, not {value!r}.",
                    hint="Remove the setting to use the default.",
                    id="vehicle_auth.E005",
                )
            )
    return errors


@checks.register()
def check_rate_limits(**kwargs: Any) -> list[checks.CheckMessage]:
    configured = getattr(settings, "VEHICLE_AUTH_RATE_LIMITS", None) or {}
    if not isinstance(configured, dict):
        problems = [f"it must be a dict, not {type(configured).__name__}"]
    else:
        problems = []
        for name, value in configured.items():
            if name not in ratelimit.DEFAULT_RATES:
                problems.append(f"unknown key {name!r}")
                continue
            if value is None:
                continue
            try:
                ratelimit.Rate.parse(value)
            except ValueError as exc:
                problems.append(f"{name!r}: {exc}")
    errors = [
        checks.Error(
            f"VEHICLE_AUTH_RATE_LIMITS is not usable: {problem}.",
            hint=(
                f"Use keys {', '.join(ratelimit.RATE_NAMES)} with rates such as '10/m' or "
                "'100/15m' (count/period in s, m, h or d), or None to turn one off."
            ),
            id="vehicle_auth.E006",
        )
        for problem in problems
    ]

    alias = ratelimit.cache_alias()
    if alias not in settings.CACHES:
        errors.append(
            checks.Error(
                f"VEHICLE_AUTH_RATE_LIMIT_CACHE names the cache {alias!r}, which CACHES "
                "does not define.",
                hint="Name a cache of CACHES (the default is 'default').",
                id="vehicle_auth.E007",
            )
        )
    elif settings.CACHES[alias].get("BACKEND", "").endswith(".DummyCache"):
        errors.append(
            checks.Warning(
                f"Rate limits count in the cache {alias!r}, a DummyCache: nothing is ever limited.",
                hint="Use a real cache (Redis, Memcached, the database), or turn the limits "
                "off explicitly with None in VEHICLE_AUTH_RATE_LIMITS.",
                id="vehicle_auth.W002",
            )
        )

    proxies = getattr(settings, "VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT", 0)
    if isinstance(proxies, bool) or not isinstance(proxies, int) or proxies < 0:
        errors.append(
            checks.Error(
                f"VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT must be a whole number >= 0, not "
                f"{proxies!r}.",
                hint="Set it to the number of reverse proxies that append to "
                "X-Forwarded-For in front of the site (0: use REMOTE_ADDR).",
                id="vehicle_auth.E008",
            )
        )
    return errors


@checks.register(deploy=True)
def check_rate_limit_cache_is_shared(**kwargs: Any) -> list[checks.CheckMessage]:
    backend = settings.CACHES.get(ratelimit.cache_alias(), {}).get("BACKEND", "")
    if not backend.endswith(".LocMemCache"):
        return []
    return [
        checks.Info(
            "Rate limits count in a LocMemCache, which each process keeps to itself: with "
            "several worker processes, each one counts separately.",
            hint="Behind several workers (gunicorn -w 4, several hosts), use a shared cache "
            "such as Redis for VEHICLE_AUTH_RATE_LIMIT_CACHE (in the demo: CACHE_URL).",
            id="vehicle_auth.I001",
        )
    ]
