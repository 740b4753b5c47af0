"""pytest fixture `smartcar_sandbox`: the Smartcar sandbox on pytest-django's live server.

Enable it in your `conftest.py`, with the sandbox's URLs mounted by your root URLconf and
`vehicle_auth.sandbox` in INSTALLED_APPS:

    pytest_plugins = ["vehicle_auth.sandbox.pytest_plugin"]

Then, in a test:

    @pytest.mark.django_db(transaction=True)
    def test_linking(client, smartcar_sandbox):
        connect_url = client.get("/vehicles/login/")["Location"]     # your view -> Connect
        callback = smartcar_sandbox.connect(connect_url, email="2-vehicles@smartcar.com")
        client.get(callback)                                         # -> redirect_uri?code=..

    @pytest.mark.django_db(transaction=True)
    def test_smartcar_down(smartcar_sandbox):
        access = smartcar_sandbox.authorize()                        # tokens without Connect
        smartcar_sandbox.inject("token", status=500, times=1)        # the next refresh fails
        ...
        assert smartcar_sandbox.request_count("token", detail="refresh_token") == 1

Only `smartcar`, Django and `vehicle_auth.sandbox` are imported; Django models lazily, since
pytest loads plugins before Django is set up.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import smartcar
from smartcar import config as smartcar_config

CLIENT_ID = "sandbox-test-client"
DEFAULT_CALLBACK_PATH = "/vehicles/callback/"
# The SDK attributes the fixture points at the sandbox, restored afterwards.
_SDK_ORIGINS = ("CONNECT_ORIGIN", "AUTH_ORIGIN", "API_ORIGIN")
# Longest wait at teardown for requests released from a hang to finish.
RELEASE_TIMEOUT = 10.0


@dataclass
class SmartcarSandbox:
    """A sandbox served by the live server, and the means to drive it.

    Attributes: `url` (the sandbox's base URL: CONNECT_ORIGIN and API_ORIGIN), `token_url`
    (AUTH_ORIGIN), `client_id`, `client_secret`, `redirect_uri` (the live server's callback,
    registered with the sandbox) and `live_server_url`. The methods are those of
    `vehicle_auth.sandbox.control`, with this application's client id and redirect URI as
    defaults where they take one.
    """

    url: str
    token_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    live_server_url: str

    # --- faults, settings and the request log (see vehicle_auth.sandbox.control) ---

    def inject(self, endpoint: str, **fault: Any) -> Any:
        """Inject a fault, e.g. `inject("token", status=500, times=1)`; returns the Fault row."""
        from vehicle_auth.sandbox import control

        return control.inject(endpoint, **fault)

    def clear_faults(self) -> None:
        """Remove every fault; requests held by a hang are answered at once."""
        from vehicle_auth.sandbox import control

        control.clear_faults()

    def configure(self, **overrides: float | None) -> None:
        """Change ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME, CODE_LIFETIME, ROTATION_GRACE."""
        from vehicle_auth.sandbox import control

        control.configure(**overrides)

    def reset(self) -> None:
        """No faults, no runtime settings, an empty request log."""
        from vehicle_auth.sandbox import control

        control.reset()

    def request_count(
        self, endpoint: str | None = None, *, detail: str | None = None, status: int | None = None
    ) -> int:
        """How many requests the sandbox answered (detail: the grant_type on "token")."""
        from vehicle_auth.sandbox import control

        return control.request_count(endpoint, detail=detail, status=status)

    def expire_access_tokens(self, user_id: str | None = None) -> int:
        """Expire all access tokens (of one Smartcar user)."""
        from vehicle_auth.sandbox import control

        return control.expire_access_tokens(user_id)

    def expire_refresh_tokens(self, user_id: str | None = None) -> int:
        """Expire all refresh tokens (of one Smartcar user)."""
        from vehicle_auth.sandbox import control

        return control.expire_refresh_tokens(user_id)

    def revoke_tokens(self, user_id: str | None = None) -> int:
        """Revoke all tokens (of one Smartcar user)."""
        from vehicle_auth.sandbox import control

        return control.revoke_tokens(user_id)

    def wait_until_holding(self, count: int = 1, *, timeout: float = 5.0) -> bool:
        """Block until `count` requests are held by a hang fault (False on timeout)."""
        from vehicle_auth.sandbox import control

        return control.wait_until_holding(count, timeout=timeout)

    # --- authorization without a browser ---

    def issue_code(
        self,
        *,
        email: str = "owner@example.com",
        make: str = "CHEVROLET",
        scopes: Iterable[str] | None = None,
        vehicles: Iterable[str] | None = None,
        client_id: str | None = None,
        redirect_uri: str | None = None,
    ) -> str:
        """An authorization code as if `email` had allowed this app through Connect."""
        from vehicle_auth.sandbox import control

        return control.issue_code(
            client_id or self.client_id,
            redirect_uri or self.redirect_uri,
            email=email,
            make=make,
            scopes=control.DEFAULT_SCOPES if scopes is None else scopes,
            vehicles=vehicles,
        )

    def auth_client(self) -> smartcar.AuthClient:
        """The SDK's AuthClient for this application, in test mode."""
        return smartcar.AuthClient(
            self.client_id, self.client_secret, self.redirect_uri, mode="test"
        )

    def authorize(self, **issue_code_kwargs: Any) -> Any:
        """Skip Connect: issue a code (see `issue_code`) and exchange it with the SDK.

        Returns the SDK's `Access` (access_token, refresh_token, expiration...).
        """
        return self.auth_client().exchange_code(self.issue_code(**issue_code_kwargs))

    def connect(self, auth_url: str, **kwargs: Any) -> str:
        """Walk the Connect screens from `auth_url`; returns the redirect URL (code or error).

        Keyword arguments go to `vehicle_auth.sandbox.driver.complete_connect` (email, make,
        vehicles, approve, uncheck_scopes...).
        """
        from vehicle_auth.sandbox.driver import complete_connect

        return complete_connect(auth_url, **kwargs)


def _base_path() -> tuple[str, str]:
    """The sandbox's mount point and token path, found from the URLconf."""
    from django.urls import NoReverseMatch, reverse

    try:
        token_path = reverse("vehicle_auth_sandbox:token")
    except NoReverseMatch as error:
        raise pytest.UsageError(
            "The Smartcar sandbox's URLs are not mounted: include "
            '`path("sandbox/", include("vehicle_auth.sandbox.urls"))` in your root URLconf.'
        ) from error
    return token_path.removesuffix("/oauth/token"), token_path


@pytest.fixture
def smartcar_sandbox(
    live_server: Any, settings: Any, transactional_db: None
) -> Generator[SmartcarSandbox]:
    """The Smartcar sandbox on the live server, with this test's application registered.

    Points the Django settings SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET,
    SMARTCAR_REDIRECT_URI, SMARTCAR_CONNECT_ORIGIN, SMARTCAR_AUTH_ORIGIN (the full token URL)
    and SMARTCAR_API_ORIGIN at it, enables it (SMARTCAR_SANDBOX_ENABLED), and sets the SDK's
    `smartcar.config` origins for code that calls the SDK directly. The redirect URI is the
    live server's URL with the path of your SMARTCAR_REDIRECT_URI (default
    "/vehicles/callback/"). Everything is restored afterwards; faults are cleared first, so
    requests held by a hang fault end before the database is flushed.

    Needs the transactional database (pytest-django gives it to any test using the live
    server); mark tests `@pytest.mark.django_db(transaction=True)` to make that explicit.
    """
    from vehicle_auth.sandbox import control, grants

    base_path, token_path = _base_path()
    callback_path = urlsplit(getattr(settings, "SMARTCAR_REDIRECT_URI", "") or "").path
    sandbox = SmartcarSandbox(
        url=live_server.url + base_path,
        token_url=live_server.url + token_path,
        client_id=CLIENT_ID,
        client_secret=secrets.token_urlsafe(24),
        redirect_uri=live_server.url + (callback_path or DEFAULT_CALLBACK_PATH),
        live_server_url=live_server.url,
    )
    grants.register_application(
        sandbox.client_id, sandbox.client_secret, [sandbox.redirect_uri], "pytest application"
    )
    settings.SMARTCAR_SANDBOX_ENABLED = True
    settings.SMARTCAR_CLIENT_ID = sandbox.client_id
    settings.SMARTCAR_CLIENT_SECRET = sandbox.client_secret
    settings.SMARTCAR_REDIRECT_URI = sandbox.redirect_uri
    settings.SMARTCAR_CONNECT_ORIGIN = sandbox.url
    settings.SMARTCAR_AUTH_ORIGIN = sandbox.token_url
    settings.SMARTCAR_API_ORIGIN = sandbox.url
    saved = {name: getattr(smartcar_config, name) for name in _SDK_ORIGINS}
    smartcar_config.CONNECT_ORIGIN = sandbox.url
    smartcar_config.AUTH_ORIGIN = sandbox.token_url
    smartcar_config.API_ORIGIN = sandbox.url
    try:
        yield sandbox
    finally:
        for name, value in saved.items():
            setattr(smartcar_config, name, value)
        # Release held requests and let them finish before the database is flushed, or
        # they would write into the next test's database.
        control.clear_faults()
        control.wait_until_idle(timeout=RELEASE_TIMEOUT)
