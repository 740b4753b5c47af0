"""Settings of the demo project, read from the environment (and an optional `.env` file).

With no `SMARTCAR_CLIENT_ID` the demo runs on vehicle_auth's built-in sandbox, served by
this same project under `/sandbox/`. With real credentials every Smartcar call goes to
Smartcar (or to the `SMARTCAR_*_ORIGIN` overrides).
"""

import base64
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; real environment variables win

DEBUG = env.bool("DEBUG", default=False)

# The insecure fallback exists only so that `make run` works with nothing set.
DEMO_SECRET_KEY = "django-insecure-vehicle-auth-demo-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEMO_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set the SECRET_KEY environment variable (or DEBUG=1 for a demo).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "project",
    "vehicle_auth",
    "vehicle_auth.sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "project.context_processors.demo",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once (the sandbox answers the app's calls
    # from another thread); IMMEDIATE transactions take the write lock up front instead of
    # failing with "database is locked" when a read turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# vehicle_auth's rate limits count here. The default, a per-process memory cache, is right
# for `make run`; a site with several worker processes or hosts needs a cache they share,
# e.g. CACHE_URL=redis://127.0.0.1:6379/1 (Django's RedisCache; `pip install redis`).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "vehicle_auth:index"
LOGOUT_REDIRECT_URL = "home"

# Production hardening; all of these follow DEBUG so the demo works over plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Behind a TLS-terminating proxy that sets (and overwrites) X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = None if DEBUG else ("HTTP_X_FORWARDED_PROTO", "https")
# Stated even where they are Django's defaults, so that `check --deploy` and a reader both
# see them. SameSite must stay "Lax" (not "Strict"): Smartcar Connect sends the user back
# to the callback from its own site, and the callback needs the session cookie.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Origins allowed to POST (e.g. the disconnect form) besides the site's own host, such as
# https://admin.example.com; full origins with scheme.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The callback URL carries Connect's code and state: never send it to another site.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"vehicle_auth": {"handlers": ["console"], "level": "INFO"}},
}

# --- Smartcar -----------------------------------------------------------------------------
SMARTCAR_CLIENT_ID = env.str("SMARTCAR_CLIENT_ID", default="")
ON_SANDBOX = not SMARTCAR_CLIENT_ID

SMARTCAR_REDIRECT_URI = env.str(
    "SMARTCAR_REDIRECT_URI", default="http://127.0.0.1:8000/vehicles/callback/"
)
SMARTCAR_MODE = env.str("SMARTCAR_MODE", default="test")
SMARTCAR_SCOPES = env.list(
    "SMARTCAR_SCOPES", default=["read_vehicle_info", "read_vin", "read_odometer"]
)

if ON_SANDBOX:
    # The sandbox is served by this project, next to the callback URL.
    _site = "{0.scheme}://{0.netloc}".format(urlsplit(SMARTCAR_REDIRECT_URI))
    SMARTCAR_CLIENT_ID = "sandbox-client-id"
    SMARTCAR_CLIENT_SECRET = "sandbox-client-secret"
    SMARTCAR_CONNECT_ORIGIN = f"{_site}/sandbox"
    SMARTCAR_AUTH_ORIGIN = f"{_site}/sandbox/oauth/token"
    SMARTCAR_API_ORIGIN = f"{_site}/sandbox"
    SMARTCAR_SANDBOX_ENABLED = True
    SMARTCAR_SANDBOX_APPLICATIONS = [
        {
            "client_id": SMARTCAR_CLIENT_ID,
            "client_secret": SMARTCAR_CLIENT_SECRET,
            "redirect_uris": [SMARTCAR_REDIRECT_URI],
            "name": "vehicle_auth demo",
        }
    ]
else:
    SMARTCAR_CLIENT_SECRET = env.str("SMARTCAR_CLIENT_SECRET", default="")
    # Unset means Smartcar's own origins (the SDK's defaults).
    SMARTCAR_CONNECT_ORIGIN = env.str("SMARTCAR_CONNECT_ORIGIN", default="")
    SMARTCAR_AUTH_ORIGIN = env.str("SMARTCAR_AUTH_ORIGIN", default="")
    SMARTCAR_API_ORIGIN = env.str("SMARTCAR_API_ORIGIN", default="")
    SMARTCAR_SANDBOX_ENABLED = False

# Fernet keys that encrypt tokens at rest; the first encrypts, all decrypt (rotation).
VEHICLE_AUTH_ENCRYPTION_KEYS = env.list("VEHICLE_AUTH_ENCRYPTION_KEYS", default=[])
if not VEHICLE_AUTH_ENCRYPTION_KEYS and DEBUG:
    # Demo only: a key derived from the (demo) secret key. The app's system check
    # refuses a missing key, so production must set its own.
    VEHICLE_AUTH_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]
VEHICLE_AUTH_BASE_TEMPLATE = "project/base.html"
# Rate limits on /vehicles/login/ and /vehicles/callback/ (see the README); these are the
# defaults, per signed-in user and per client address.
VEHICLE_AUTH_RATE_LIMITS = {
    "login": "10/m",
    "login_ip": "30/m",
    "callback": "20/m",
    "callback_ip": "60/m",
}
# Client addresses come from X-Forwarded-For as written by this many trusted proxies. In
# production the demo assumes one TLS-terminating proxy (see SECURE_PROXY_SSL_HEADER);
# without it every visitor would count as the proxy's address and share one limit.
VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT = env.int(
    "VEHICLE_AUTH_RATE_LIMIT_PROXY_COUNT", default=0 if DEBUG else 1
)
