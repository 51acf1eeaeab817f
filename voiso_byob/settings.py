"""One settings module, driven by the environment (django-environ).

Embedded default: SQLite file + in-memory channel layer. Production and CI set
DATABASE_URL and REDIS_URL. DEBUG is off unless the environment turns it on.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# environ's bool parser treats "false", "0", "no", "off" and "" as False.
DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (production mode). "
            "Set DEBUG=true for local development."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# SIP domain of a contact center: "{slug}.{SIP_DOMAIN_SUFFIX}".
SIP_DOMAIN_SUFFIX = env.str("SIP_DOMAIN_SUFFIX", default="voiso.com").strip().lower()

# Fernet keys for secrets at rest, newest first (comma-separated). A development
# default exists only with DEBUG on, like SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# Bot providers' API base URLs (regional hosts, or a local stand-in in tests).
PROVIDER_API_URLS = {
    "elevenlabs": env.str("ELEVENLABS_API_URL", default="https://api.elevenlabs.io"),
    "vapi": env.str("VAPI_API_URL", default="https://api.vapi.ai"),
    "retell": env.str("RETELL_API_URL", default="https://api.retellai.com"),
}
# Egress addresses of our SIP proxy: providers allow-list them for the INVITEs we send.
SIP_PROXY_ADDRESSES = env.list("SIP_PROXY_ADDRESSES", default=[])

INSTALLED_APPS = [
    # daphne first: it makes `runserver` an ASGI server (HTTP + websockets).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "voiso_byob",
    "virtual_agents",
    "routing",
    "campaigns",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so it is the first to see a view's exception: the database down is a 503, not a 500.
    "voiso_byob.db_outage.DatabaseUnavailableMiddleware",
]

# Benchmarks mount a minimal comparison view beside the real URLs (bench/urls.py).
ROOT_URLCONF = env.str("ROOT_URLCONF", default="voiso_byob.urls")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "voiso_byob.context_processors.portal",
            ],
        },
    },
]

WSGI_APPLICATION = "voiso_byob.wsgi.application"
ASGI_APPLICATION = "voiso_byob.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A kept connection is checked before a request reuses it, so after a database restart each worker
# reconnects instead of failing its first request on the dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file shared by the dev server, the simulator and the dialer: wait on
    # locks instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if IS_POSTGRES:
    # Only the hot paths (telephony: routing.hotpath; event ingestion: reporting.ingest_sql) run on
    # server-side-binding cursors (voiso_byob.db); psycopg prepares a statement on a connection's
    # second use instead of planning it on every call. Django's other queries stay client-side.
    # Behind a transaction-pooling PgBouncer this needs max_prepared_statements (PgBouncer ≥ 1.21),
    # or PREPARE_THRESHOLD=0 to turn preparing off.
    _threshold = env.int("PREPARE_THRESHOLD", default=2)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _threshold or None

# A read replica (streaming replication of `default`): reports and exports read from it when the code
# asks (voiso_byob.replica.reads_from_replica); everything else, and every write, uses `default`.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"].setdefault("CONN_MAX_AGE", DATABASES["default"]["CONN_MAX_AGE"])
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # The test suite has one database: the replica alias reads it (no replication to wait for).
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["voiso_byob.replica.ReplicaRouter"]

REDIS_URL = env.str("REDIS_URL", default="")
# A socket waits for its next message in a blocking BZPOPMIN of channels_redis's `brpop_timeout`
# (5 s), looped. redis-py 8 gives every connection a 5 s socket timeout by default, so a read
# that Redis answers at the end of those 5 s timed out on our side: the consumer died and the
# socket closed with 1011 after ~5 s without events. The layer's connections wait longer than
# the blocking read; a Redis that does not answer at all still fails within this bound.
CHANNEL_LAYER_SOCKET_TIMEOUT = 15.0  # seconds
# After Redis restarts, every pooled connection is dead and its next command fails: once more, on a
# new connection, so the first socket handshake and the first feed send after an outage go through
# instead of failing (a Redis that is down still fails at once: connections are refused).
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                        "retry": AsyncRetry(NoBackoff(), 1),
                    }
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Shared by every process when Redis is there: API key lookups and menu state per call
# live here, so the telephony hot path needs no SQL for them.
# Every cache call has a way on without Redis (voiso_byob.cache.CACHE_DOWN), so a Redis that does
# not answer must fail a call quickly rather than hold the request: a stopped Redis refuses at once,
# a hung one times out here.
CACHE_SOCKET_TIMEOUT = env.float("CACHE_SOCKET_TIMEOUT", default=0.5)  # seconds
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "voiso_byob.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_SOCKET_TIMEOUT,
                "socket_timeout": CACHE_SOCKET_TIMEOUT,
                "retry": Retry(NoBackoff(), 1),  # a dead pooled connection: once more (as above)
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Per-key rate limits (voiso_byob/rate_limits.py): a token bucket per API key, sized by its scope.
# API_RATE_LIMITS="scope=RATE:BURST,..." (requests per second, and how many may come at once after a
# quiet spell; BURST defaults to 2 x RATE); a rate of 0 turns the scope's limit off; scopes not named
# keep their default. Telephony is far above what the switch sends: the route bench saturates two
# gunicorn workers at ~2,800 req/s on one key, the SIP edge at 50 calls/s sends a few hundred.
# Portal sessions are not limited by these.
API_RATE_LIMITS: dict[str, tuple[float, int]] = {
    "telephony": (10_000.0, 20_000),
    "read": (50.0, 100),
    "admin": (50.0, 100),
}
for _scope, _text in env.dict("API_RATE_LIMITS", default={}).items():
    try:
        if _scope not in API_RATE_LIMITS:
            raise ValueError(f"unknown scope (one of {', '.join(API_RATE_LIMITS)})")
        _rate_text, _, _burst_text = _text.partition(":")
        _rate = float(_rate_text)
        if not 0 <= _rate < float("inf"):
            raise ValueError("the rate must be a number, 0 or more")
        _burst = int(_burst_text) if _burst_text else max(1, round(2 * _rate))
        if _burst < 1:
            raise ValueError("the burst must be at least 1")
    except ValueError as exc:
        raise ImproperlyConfigured(f"API_RATE_LIMITS: {_scope}={_text}: {exc}") from None
    API_RATE_LIMITS[_scope] = (_rate, _burst)

# Flow http_request nodes may call private addresses only when this is on (tests, labs).
FLOW_HTTP_ALLOW_PRIVATE = env.bool("FLOW_HTTP_ALLOW_PRIVATE", default=False)
# Reporting: a caller who hangs up within this many seconds of the bot connecting (no handoff)
# counts as abandoned in the bot, not contained (design.md "Metrics").
BOT_ABANDON_SECONDS = env.int("BOT_ABANDON_SECONDS", default=10)
# Reports read the 15-minute rollups the fold worker keeps (reporting.rollups); off: the raw records.
REPORTS_FROM_ROLLUPS = env.bool("REPORTS_FROM_ROLLUPS", default=True)

# Dialer workers' http gateway (manage.py run_dialer --gateway http): where originations go and
# the secret they are signed with (HMAC-SHA256; see campaigns/gateways/http.py).
DIALER_SWITCH_URL = env.str("DIALER_SWITCH_URL", default="")
DIALER_SWITCH_SECRET = env.str("DIALER_SWITCH_SECRET", default="")

AUTH_USER_MODEL = "voiso_byob.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every sign-in goes through the throttle (voiso_byob/login_throttle.py has the policy).
AUTHENTICATION_BACKENDS = ["voiso_byob.login_throttle.ThrottledModelBackend"]
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=30)
LOGIN_COOLOFF_SECONDS = env.int("LOGIN_COOLOFF_SECONDS", default=900)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests render templates without running collectstatic.
if env.bool("STATIC_NO_MANIFEST", default=False):
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Production hardening; `manage.py check --deploy` passes with DEBUG off.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Off only where the site is served over plain http on purpose (tests' live server).
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response: scripts, styles and connections from this
# origin only. No 'unsafe-inline' and no 'unsafe-eval': templates carry no inline script, style=""
# attribute or handler (static/js reads data attributes instead), and htmx runs with allowEval off
# (its config is a <meta> tag in base.html). 'self' in connect-src covers the Live page's
# ws:/wss: socket to this same host (CSP Level 3; tested in Chromium). Swagger UI's init script is
# a separate file (SpectacularSwaggerSplitView), so /api/docs/ needs no exception either.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        # Call recordings play from where the SIP layer or the bot provider stored them.
        "media-src": [SELF, "https:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SESSION_COOKIE_HTTPONLY = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "voiso_byob.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["voiso_byob.authentication.ConfigurationAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["voiso_byob.authentication.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "voiso_byob.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "voiso_byob.schema.ApiAutoSchema",
    # JSON only: every endpoint's body is JSON (nested lists and objects a form cannot carry), and
    # the schema then advertises no form or multipart bodies that would only be refused.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "voiso_byob.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "voiso_byob API",
    "DESCRIPTION": "Contact-center control plane for Bring Your Own Bot.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets served from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# One handler, on the root logger. Django first applies its own defaults, whose `django` logger
# prints to the console under DEBUG and also propagates to root (every line printed twice): naming
# `django` and `django.server` here takes their handlers away, so they print through root only.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refused_request_one_line": {"()": "voiso_byob.log_filters.RefusedRequestOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["refused_request_one_line"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# E-mail (invitations) goes to EMAIL_URL (smtp+tls://user:password@smtp.example.com:587). Without
# it: printed on the console under DEBUG; otherwise Django's default, an SMTP server on localhost:25
# (never the console in production: the links carry tokens, which must not land in the logs).
# The test suite reads Django's locmem outbox.
_EMAIL_URL = env.str("EMAIL_URL", default="") or ("consolemail://" if DEBUG else "smtp://localhost:25")
globals().update(env.email_url_config(_EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="voiso_byob <noreply@localhost>")
# Where e-mailed links point (https://portal.example.com); empty: the scheme and host of the
# request that sent the invitation (checked against ALLOWED_HOSTS).
PORTAL_URL = env.str("PORTAL_URL", default="").rstrip("/")
# An invitation link works this long after it was (re)sent.
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)
