"""Settings of the test suite: the demo project's, on the sandbox, with test-only secrets.

SQLite tests use a file database (not `:memory:`) so the live server thread that serves the
sandbox and the test's own threads each get their own connection, as in production.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else")
os.environ.setdefault("DEBUG", "0")

from project.settings import *  # noqa: F403
from project.settings import DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per test process, so concurrent runs never share a database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"vehicle_auth-tests-{os.getpid()}.sqlite3")
    }

# Whatever a developer's .env says, the suite talks only to the sandbox (the
# smartcar_sandbox fixture points these at its live server).
SMARTCAR_CLIENT_ID = "sandbox-client-id"
SMARTCAR_CLIENT_SECRET = "sandbox-client-secret"
SMARTCAR_REDIRECT_URI = "http://testserver/vehicles/callback/"
SMARTCAR_CONNECT_ORIGIN = "http://testserver/sandbox"
SMARTCAR_AUTH_ORIGIN = "http://testserver/sandbox/oauth/token"
SMARTCAR_API_ORIGIN = "http://testserver/sandbox"
SMARTCAR_MODE = "test"
SMARTCAR_SCOPES = ["read_vehicle_info", "read_vin", "read_odometer"]

ALLOWED_HOSTS = ["*"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}

VEHICLE_AUTH_ENCRYPTION_KEYS = [
    "zE5wH1rGKk7ll_3ygxGmZ7aP9tAo6_hv6EvKUewR6lI=",  # test-only keys
    "u4MzcnE0SAHMSLUwvfHBIjbJKKuLB0aTQrnoyb4sUbs=",
]
SMARTCAR_SANDBOX_ENABLED = True
SMARTCAR_SANDBOX_ALLOW_WITHOUT_DEBUG = True
