"""Rate limits on /vehicles/login/ and /vehicles/callback/: per user, per address, settings."""

from __future__ import annotations

import logging

import pytest
from django.core.cache.backends.base import BaseCache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, RequestFactory

from tests.factories import UserFactory
from vehicle_auth import checks, ratelimit
from vehicle_auth.models import AuthorizationAttempt
from vehicle_auth.ratelimit import Rate

pytestmark = pytest.mark.django_db

LOGIN = "/vehicles/login/"
CALLBACK = "/vehicles/callback/"


def signed_in(username: str, address: str = "127.0.0.1") -> Client:
    client = Client(REMOTE_ADDR=address)
    client.force_login(UserFactory(username=username))
    return client


def statuses(client: Client, path: str, count: int) -> list[int]:
    return [client.get(path).status_code for _ in range(count)]


class BrokenCache(BaseCache):
    """A cache whose server is down: every operation fails as a network client's would."""

    def __init__(self, location: str, params: dict) -> None:
        super().__init__(params)

    def add(self, *args, **kwargs):
        raise ConnectionError("cache server unreachable")

    incr = set = get = add


# --- the views ------------------------------------------------------------------------------


def test_login_allows_ten_a_minute_per_user_then_answers_429(user_client) -> None:
    assert statuses(user_client, LOGIN, 10) == [302] * 10

    response = user_client.get(LOGIN)

    page = response.content.decode()
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "no-store" in response["Cache-Control"]
    assert "Too many attempts" in page
    assert "You started connecting a vehicle too many times in a short while." in page
    assert 'href="/vehicles/"' in page
    assert "<main" in page  # the site's base template
    assert AuthorizationAttempt.objects.count() == 10  # the refused request recorded nothing


def test_one_users_limit_leaves_other_users_alone(user_client) -> None:
    statuses(user_client, LOGIN, 11)
    other = signed_in("bob", address="10.0.0.2")

    assert other.get(LOGIN).status_code == 302
    assert user_client.get(LOGIN).status_code == 429


def test_the_address_limit_counts_every_user_behind_it(settings) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": "100/m", "login_ip": "3/m"}
    office = [signed_in(f"clerk{n}", address="192.0.2.7") for n in range(4)]
    elsewhere = signed_in("home", address="198.51.100.1")

    assert [client.get(LOGIN).status_code for client in office] == [302, 302, 302, 429]
    assert elsewhere.get(LOGIN).status_code == 302


def test_anonymous_callbacks_are_limited_per_address(settings, client) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"callback_ip": "5/m"}

    assert statuses(client, f"{CALLBACK}?state=guess&code=x", 6) == [400] * 5 + [429]
    response = client.get(CALLBACK)
    assert "We received too many returns from Smartcar from you" in response.content.decode()
    assert Client(REMOTE_ADDR="10.9.9.9").get(CALLBACK).status_code == 400


def test_a_refused_callback_does_not_use_up_the_state(settings, user, user_client) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"callback": "3/m", "callback_ip": None}
    user_client.get(LOGIN)
    attempt = AuthorizationAttempt.objects.get()

    assert statuses(user_client, f"{CALLBACK}?state=wrong", 3) == [400] * 3
    assert user_client.get(f"{CALLBACK}?state=anything&code=abc").status_code == 429

    attempt.refresh_from_db()
    assert attempt.outcome == AuthorizationAttempt.Outcome.PENDING
    assert attempt.consumed_at is None


def test_retry_after_is_the_longest_wait_of_the_limits_exceeded(settings, user_client) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": "1/h", "login_ip": "1/m"}
    user_client.get(LOGIN)

    response = user_client.get(LOGIN)

    assert response.status_code == 429
    assert 60 < int(response["Retry-After"]) <= 3600
    assert "minutes and try again" in response.content.decode()


def test_none_turns_a_limit_off(settings, user_client) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": None, "login_ip": None}

    assert statuses(user_client, LOGIN, 15) == [302] * 15


def test_only_get_is_counted_on_login(user_client) -> None:
    for _ in range(12):
        assert user_client.post(LOGIN).status_code == 405
    assert user_client.get(LOGIN).status_code == 302


def test_a_broken_cache_lets_requests_through_and_says_so(settings, user_client, caplog) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.test_ratelimit.BrokenCache"},
    }
    settings.VEHICLE_AUTH_RATE_LIMIT_CACHE = "broken"

    with caplog.at_level(logging.WARNING, logger="vehicle_auth.ratelimit"):
        assert statuses(user_client, LOGIN, 12) == [302] * 12

    assert "Rate limit login not applied: the cache 'broken' failed" in caplog.messages


def test_a_spoofed_forwarded_for_does_not_escape_the_address_limit(settings) -> None:
    settings.VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT = 1
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": None, "login_ip": "2/m"}
    client = signed_in("spoofer", address="10.0.0.1")  # the proxy

    answers = [
        client.get(LOGIN, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.9").status_code
        for n in range(3)
    ]

    assert answers == [302, 302, 429]


# --- counting -------------------------------------------------------------------------------


def test_a_fixed_window_counts_then_starts_again() -> None:
    rate = Rate(limit=3, period=60)
    start = 6000.0 + 15  # 15 s into a window

    usages = [ratelimit.hit("login", "user:1", rate, now=start + n) for n in range(4)]

    assert [usage.count for usage in usages] == [1, 2, 3, 4]
    assert [usage.exceeded for usage in usages] == [False, False, False, True]
    assert usages[3].retry_after == 42  # the window ends at 6060
    assert ratelimit.hit("login", "user:1", rate, now=start + 45).count == 1
    assert ratelimit.hit("login", "user:2", rate, now=start).count == 1


def test_an_evicted_counter_opens_the_window_again(settings) -> None:
    from django.core.cache import cache

    rate = Rate(limit=5, period=60)
    ratelimit.hit("login", "user:1", rate, now=600.0)
    cache.clear()  # an eviction between add() and incr() looks the same to incr()

    assert ratelimit.hit("login", "user:1", rate, now=601.0).count == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/m", Rate(10, 60)),
        ("100/15m", Rate(100, 900)),
        ("5/30s", Rate(5, 30)),
        ("1000/d", Rate(1000, 86400)),
        (" 2 / h ", Rate(2, 3600)),
    ],
)
def test_rates_are_count_slash_period(text, expected) -> None:
    assert Rate.parse(text) == expected


@pytest.mark.parametrize("text", ["", "10", "0/m", "10/x", "-1/m", "1/0m", "ten/m", 10, None])
def test_malformed_rates_are_refused(text) -> None:
    with pytest.raises(ValueError, match=r"rate|allows nothing"):
        Rate.parse(text)


def test_rate_limit_names_a_known_view() -> None:
    with pytest.raises(ValueError, match="Unknown rate-limited view"):
        ratelimit.rate_limit("index")


# --- client addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "203.0.113.5", "192.0.2.1"),
        (1, "10.0.0.1", "203.0.113.5", "203.0.113.5"),
        (1, "10.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),
        (2, "10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.1", "203.0.113.5"),
        (2, "10.0.0.2", "203.0.113.5", "10.0.0.2"),  # fewer hops than proxies: the peer
        (1, "10.0.0.1", "", "10.0.0.1"),
        (0, "2001:db8:1:2:3:4:5:6", "", "2001:db8:1:2::/64"),
        (0, "2001:db8:1:2:ffff::9", "", "2001:db8:1:2::/64"),
        (0, "::ffff:192.0.2.1", "", "192.0.2.1"),
        (1, "10.0.0.1", "not an address", "unknown"),
        (0, "", "", "unknown"),
    ],
)
def test_client_ip(settings, proxies, remote, forwarded, expected) -> None:
    settings.VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert ratelimit.client_ip(request) == expected


# --- system checks --------------------------------------------------------------------------


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_the_default_settings_pass_the_rate_limit_checks() -> None:
    assert checks.check_rate_limits() == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10/m", "must be a dict"),
        ({"logins": "10/m"}, "unknown key 'logins'"),
        ({"login": "10 per minute"}, "'login'"),
        ({"callback_ip": "0/m"}, "allows nothing"),
    ],
)
def test_e006_rate_limits(settings, value, problem) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = value
    messages = checks.check_rate_limits()
    assert ids(messages) == ["vehicle_auth.E006"]
    assert problem in messages[0].msg


def test_e007_unknown_cache(settings) -> None:
    settings.VEHICLE_AUTH_RATE_LIMIT_CACHE = "ratelimits"
    assert ids(checks.check_rate_limits()) == ["vehicle_auth.E007"]


@pytest.mark.parametrize("value", [-1, "1", True, 1.5])
def test_e008_proxy_count(settings, value) -> None:
    settings.VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT = value
    assert ids(checks.check_rate_limits()) == ["vehicle_auth.E008"]


def test_w002_a_dummy_cache_limits_nothing(settings) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids(checks.check_rate_limits()) == ["vehicle_auth.W002"]


def test_i001_a_per_process_cache_is_pointed_out_at_deploy(settings) -> None:
    assert ids(checks.check_rate_limit_cache_is_shared()) == ["vehicle_auth.I001"]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
        }
    }
    assert checks.check_rate_limit_cache_is_shared() == []


def test_manage_py_check_fails_on_bad_rate_limits(settings) -> None:
    settings.VEHICLE_AUTH_RATE_LIMITS = {"login": "lots"}
    with pytest.raises(SystemCheckError, match=r"vehicle_auth\.E006"):
        call_command("check")
