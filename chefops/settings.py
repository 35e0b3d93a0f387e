"""ChefOps settings: one module, configured only through the environment (django-environ).

DJANGO_ENV selects the profile: development (default), test, staging or production.
Every variable is documented in README.md ("Configuration").
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from chefops import dbbudget, redis_layout
from chefops.ops import storage_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "staging", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, test, staging or production, not {DJANGO_ENV!r}"
    )
IS_PRODUCTION_LIKE = DJANGO_ENV in {"staging", "production"}
IS_PRODUCTION = DJANGO_ENV == "production"

# A test run owns its state: its own test database, its own keys in Redis (cache and Celery
# broker) and its own directory for job stamps, queues, archives and backups, all named after
# this id. The processes a test starts inherit it through the environment and share the
# run's state; two runs on one machine (two clones, or a developer's run beside CI) never
# see or flush each other's.
TEST_RUN_ID = ""
TEST_STATE_DIR: Path | None = None
if DJANGO_ENV == "test":
    TEST_RUN_ID = os.environ.setdefault("CHEFOPS_TEST_RUN_ID", uuid.uuid4().hex[:12])
    TEST_STATE_DIR = Path(tempfile.gettempdir()) / f"chefops-test-{TEST_RUN_ID}"

if IS_PRODUCTION_LIKE:
    missing = [
        name
        for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS")
        if not env.str(name, default="")
        # REDIS_URL is only the default of both: naming the two Redis URLs will do.
        and not (
            name == "REDIS_URL"
            and env.str("CACHE_URL", default="")
            and env.str("CELERY_BROKER_URL", default="")
        )
    ]
    # /metrics without a token would be public (outbox, database and disk figures); only an
    # explicit METRICS_PUBLIC=true says the network keeps it private.
    if not env.str("METRICS_TOKEN", default="") and not env.bool("METRICS_PUBLIC", default=False):
        missing.append(
            "METRICS_TOKEN (or METRICS_PUBLIC=true if the network keeps /metrics private)"
        )
    if missing:
        raise ImproperlyConfigured(
            f"DJANGO_ENV={DJANGO_ENV} refuses to start without: {', '.join(missing)}"
        )

SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-change-me-" + "x" * 32)
JWT_SECRET = env.str("JWT_SECRET", default=SECRET_KEY)
if IS_PRODUCTION_LIKE and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-insecure")):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")

DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "chefops",
    "outbox",
    "companies",
    "contracts",
    "servicedays",
    "webhooks",
]

if importlib.util.find_spec("django_migration_linter"):  # dev/CI tool, not a runtime need
    INSTALLED_APPS.append("django_migration_linter")

MIDDLEWARE = [
    # First, so its latency covers the whole stack and every response (even 400/500) is counted.
    "chefops.ops.metrics.PrometheusMiddleware",
    "chefops.middleware.RequestIdMiddleware",
    "chefops.middleware.HealthHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "chefops.middleware.ApiTrailingSlashMiddleware",
    # Unknown methods (405) and API requests no view can use (400/413), in the error shape.
    "chefops.middleware.ApiRequestGuardMiddleware",
    # The admin's middleware: Django's classes, skipped for /api and /metrics (issue #18;
    # chefops/middleware.py). The CSRF check itself (process_view) runs for every view.
    "chefops.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "chefops.middleware.AdminCsrfViewMiddleware",
    "chefops.middleware.AdminAuthenticationMiddleware",
    "chefops.middleware.AdminMessageMiddleware",
    "chefops.middleware.AdminXFrameOptionsMiddleware",
    # Last: the first to see a view's exception (a database outage → 503, not 500).
    "chefops.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "chefops.urls"
WSGI_APPLICATION = "chefops.wsgi.application"
APPEND_SLASH = False

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let the web process and the Celery worker share the file.
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Checked at each request's first use, by a round trip only when the socket shows trouble
    # (chefops/db/postgresql/base.py).
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=2))
    _db["OPTIONS"].setdefault("application_name", "chefops")
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"
if IS_POSTGRES:
    _db["ENGINE"] = "chefops.db.postgresql"  # Django's backend, a cheaper health check
if not IS_POSTGRES:
    # Covering indexes (Index(include=...)) are a PostgreSQL optimisation; SQLite builds the
    # same index without the extra columns, which is all single-machine mode needs. Silenced
    # on SQLite only, so a PostgreSQL deployment would still report a lost covering index.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# Django's deploy checks look for the CSRF and clickjacking middleware by their exact paths;
# ours are their subclasses, skipped for /api and /metrics only (chefops/middleware.py), and
# chefops/checks.py reports the same warnings (chefops.W002/W003) when no subclass is there.
SILENCED_SYSTEM_CHECKS = [
    *globals().get("SILENCED_SYSTEM_CHECKS", []),
    "security.W002",
    "security.W003",
]
if TEST_RUN_ID and IS_POSTGRES:
    # pytest-django creates and drops this database; its name is this run's alone (on SQLite
    # the test database lives in memory and is private anyway).
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{TEST_RUN_ID}"[:63]}

# --- Database connections: pool, budget, PgBouncer (README "Scaling") -----------------------
# Every process of an instance (gunicorn workers, Celery worker processes, beat) must fit in
# DB_CONNECTIONS_PER_INSTANCE server connections (16: three instances take 48 of a 50-connection
# plan); chefops/dbbudget.py has the arithmetic (and what each process was measured to hold),
# chefops/checks.py warns (chefops.W010) when the configured processes exceed the budget.
# Persistent connections (CONN_MAX_AGE, health-checked) are the default: one per web request
# thread, Celery process and beat. Where those would not fit, each process gets a psycopg pool
# (Django's OPTIONS["pool"]) of DB_POOL_MIN..DB_POOL_MAX connections instead, the default max
# being what fits. The pool costs a request 10-15 % on uncached reads (docs/benchmarks.md), so it
# is not on where it buys nothing; DB_POOL=true/false decides either way.
DB_CONNECTIONS_PER_INSTANCE = env.int("DB_CONNECTIONS_PER_INSTANCE", default=16)
DB_WEB_WORKERS = env.int("WEB_CONCURRENCY", default=3)  # gunicorn.conf.py reads the same
DB_WEB_THREADS = env.int("GUNICORN_THREADS", default=4)
# Celery's setting below reads the same variable; each worker process is single-threaded.
DB_CELERY_PROCESSES = env.int("CELERY_WORKER_CONCURRENCY", default=2)
DB_BEAT_PROCESSES = dbbudget.BEAT_PROCESSES
DB_POOL = IS_POSTGRES and env.bool(
    "DB_POOL",
    # Tests: off (several assert what one connection does); the PgBouncer run sets it.
    default=DJANGO_ENV != "test"
    and not dbbudget.persistent_connections_fit(
        DB_CONNECTIONS_PER_INSTANCE,
        web_workers=DB_WEB_WORKERS,
        web_threads=DB_WEB_THREADS,
        celery_processes=DB_CELERY_PROCESSES,
    ),
)
DB_POOL_MIN = env.int("DB_POOL_MIN", default=1)
DB_POOL_MAX = env.int(
    "DB_POOL_MAX",
    default=dbbudget.default_pool_max(
        DB_CONNECTIONS_PER_INSTANCE,
        web_workers=DB_WEB_WORKERS,
        web_threads=DB_WEB_THREADS,
        celery_processes=DB_CELERY_PROCESSES,
        pool_min=DB_POOL_MIN,
    ),
)
# Seconds a request waits for a pooled connection before it fails (a 503, as any database
# outage: chefops.middleware.DatabaseUnavailableMiddleware). A web worker's pool holds a
# connection per request thread, so the wait is the connect itself: the same bound, and
# /api/health still answers 503 within ~2 s while PostgreSQL is down.
DB_POOL_TIMEOUT = env.float(
    "DB_POOL_TIMEOUT", default=float(_db.get("OPTIONS", {}).get("connect_timeout", 2))
)
if not 0 <= DB_POOL_MIN <= DB_POOL_MAX:
    raise ImproperlyConfigured("DB_POOL_MIN must be between 0 and DB_POOL_MAX")
if not DB_POOL_TIMEOUT > 0:
    raise ImproperlyConfigured("DB_POOL_TIMEOUT must be a positive number of seconds")
if DB_POOL:
    # A pooled connection goes back to the pool when Django closes it (end of each request and
    # task): persistent connections and a pool exclude each other (Django refuses both).
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"]["pool"] = {
        "min_size": DB_POOL_MIN,
        "max_size": DB_POOL_MAX,
        "timeout": DB_POOL_TIMEOUT,
    }
# Behind PgBouncer in transaction mode each transaction may run on another server connection:
# nothing may outlive a transaction. No server-side cursors (a named cursor lives across
# fetches), no prepared statements (psycopg's are per server connection; None = never), and
# the code takes only transaction-level advisory locks (README "Scaling").
DB_PGBOUNCER = IS_POSTGRES and env.bool("DB_PGBOUNCER", default=False)
# Prepared statements (issue #18): parameters travel apart from the SQL (server-side binding)
# and a statement a connection has run DB_PREPARE_THRESHOLD times is prepared on it, so
# PostgreSQL no longer parses it, and plans it again only while a custom plan beats the
# generic one (its plan_cache_mode "auto"). The hot reads' planning was 20-35 % of their
# time in the database (docs/benchmarks.md). Direct connections only: behind PgBouncer a
# transaction may land on a server connection that never saw the PREPARE.
DB_SERVER_SIDE_BINDING = IS_POSTGRES and env.bool("DB_SERVER_SIDE_BINDING", default=True)
DB_PREPARE_THRESHOLD = env.int("DB_PREPARE_THRESHOLD", default=5)
if DB_SERVER_SIDE_BINDING:
    _db["OPTIONS"]["server_side_binding"] = True
if DB_SERVER_SIDE_BINDING and not DB_PGBOUNCER and DB_PREPARE_THRESHOLD > 0:
    _db["OPTIONS"]["prepare_threshold"] = DB_PREPARE_THRESHOLD
if DB_PGBOUNCER:
    _db["DISABLE_SERVER_SIDE_CURSORS"] = True
    _db["OPTIONS"]["prepare_threshold"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "companies.User"

PASSWORD_HASHERS = [
    # Checks and upgrades Argon2 hashes of any parameters; Django's own Argon2 hasher must not
    # be listed too (same algorithm name: Django would verify with it, ~100 MiB per hash).
    "companies.hashers.SizedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Cache / Redis --------------------------------------------------------------------------
# Two Redis databases (chefops/redis_layout.py, README "Redis"): the Celery broker and its
# results in the one REDIS_URL names, the Django cache in the next; CELERY_BROKER_URL and
# CACHE_URL override either (a single-database Redis: CACHE_URL = the broker's URL).
REDIS_URL = env.str("REDIS_URL", default="")
try:
    CACHE_URL, REDIS_BROKER_URL = redis_layout.layout(
        REDIS_URL,
        cache_url=env.str("CACHE_URL", default=""),
        broker_url=env.str("CELERY_BROKER_URL", default=""),
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": [CACHE_URL],  # a list: django-redis would split a string on commas
            "KEY_PREFIX": env.str(
                "CACHE_KEY_PREFIX",
                default=f"chefops-test-{TEST_RUN_ID}" if TEST_RUN_ID else "chefops",
            ),
            "TIMEOUT": 300,
            "OPTIONS": {
                # clear() deletes KEY_PREFIX's keys, never FLUSHDB (chefops/cache.py).
                "CLIENT_CLASS": "chefops.cache.PrefixClearClient",
                # A silent Redis fails a cache call within seconds (callers fall back to the
                # database) instead of holding a request thread forever.
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# --- Read cache and principal cache (chefops/readcache.py, companies/principals.py) ---------
# Seconds a cached read (READ_CACHE_SECONDS) or principal (AUTH_CACHE_SECONDS) lives. Caching
# needs a cache every process shares (Redis, CACHE_URL): off without it, except in tests, which
# run in one process and keep the caches on by default (local memory without REDIS_URL), so
# that every API test also checks that writes invalidate (chefops/cachewrites.py). Writes bump
# the version tokens whenever a cache is configured, whatever these two say.
_CACHES_ON_BY_DEFAULT = bool(CACHE_URL) or DJANGO_ENV == "test"
# Short-lived: an invalidation that fails (Redis unreachable from the writer) leaves stale
# entries for at most this long (chefops/cachewrites.py).
READ_CACHE_SECONDS = env.int("READ_CACHE_SECONDS", default=60 if _CACHES_ON_BY_DEFAULT else 0)
AUTH_CACHE_SECONDS = env.int("AUTH_CACHE_SECONDS", default=60 if _CACHES_ON_BY_DEFAULT else 0)
if not CACHE_URL and DJANGO_ENV != "test":
    READ_CACHE_SECONDS = AUTH_CACHE_SECONDS = 0

# --- Celery ---------------------------------------------------------------------------------
_STATE_ROOT = TEST_STATE_DIR or BASE_DIR
RUN_DIR = Path(env.str("RUN_DIR", default=str(_STATE_ROOT / ".run")))
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
CELERY_RESULT_BACKEND: str | None
# A publish (the after-commit nudge of the outbox, beat's schedule) fails within seconds when
# Redis is down or silent, instead of kombu's retry loop or a socket that waits forever: one
# connection attempt, connect within 2 s, any reply within 3 s (above the worker's 1 s BRPOP).
# The worker's own reconnect loop (broker_connection_retry*) is not affected.
REDIS_BROKER_FAIL_FAST_OPTIONS: dict[str, Any] = {
    "max_retries": 0,
    "socket_connect_timeout": 2,
    "socket_timeout": 3,
}
if REDIS_BROKER_URL:
    CELERY_BROKER_URL = REDIS_BROKER_URL
    CELERY_RESULT_BACKEND = REDIS_BROKER_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(REDIS_BROKER_FAIL_FAST_OPTIONS)
    if TEST_RUN_ID:
        # Every key of the broker (queues, bindings, unacked) and of the results, prefixed:
        # a worker started by this run never takes another run's tasks. Not the cache's
        # "<prefix>:": its clear() must spare them where both share one database.
        _broker_prefix = f"chefops-test-{TEST_RUN_ID}-celery:"
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = _broker_prefix
        CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": _broker_prefix}
else:
    # Single-machine mode: the filesystem transport (kombu) needs no service, and the worker
    # started by `make run` also runs beat (-B), so tasks and periodic jobs still execute.
    _queue_dir = RUN_DIR / "celery-queue"
    # The transport ignores the host; naming kombu's default spares a warning per connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Exchange bindings: kombu's default is "control" in the working directory, which
        # would litter the checkout and mix the bindings of every RUN_DIR.
        "control_folder": str(RUN_DIR / "celery-control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=DJANGO_ENV == "test")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=2)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- I18N / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DJANGO_ENV == "test"
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- REST framework / API -------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["companies.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["chefops.api.renderers.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["chefops.api.parsers.CamelCaseJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "chefops.api.pagination.PagePagination",
    "EXCEPTION_HANDLER": "chefops.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "chefops.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": False,
    "DEFAULT_THROTTLE_RATES": {},
    # Proxies in front of the app whose X-Forwarded-For entries are trusted for client IPs.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ChefOps API",
    "DESCRIPTION": "Back office of the ChefOps catering-contract platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        # The error schemas and responses that chefops.api.schema.AutoSchema refers to.
        "chefops.api.schema.add_error_components",
    ],
    "SCHEMA_PATH_PREFIX": "/api",
    # Three models have a `status` enum; name each so the schema has no collisions.
    "ENUM_NAME_OVERRIDES": {
        "ContractStatusEnum": "contracts.models.ContractStatus",
        "ServiceDayStatusEnum": "servicedays.models.ServiceDayStatus",
        "CompanyStatusValuesEnum": [("ACTIVE", "ACTIVE"), ("INACTIVE", "INACTIVE")],
    },
    # No "SECURITY" here: the JWT authentication's extension (companies/schema.py) already
    # puts one bearerAuth requirement on each authenticated operation and registers the scheme.
}

ACCESS_TOKEN_MINUTES = env.int("ACCESS_TOKEN_MINUTES", default=15)
REFRESH_TOKEN_DAYS = env.int("REFRESH_TOKEN_DAYS", default=7)
REFRESH_TOKEN_REMEMBER_DAYS = env.int("REFRESH_TOKEN_REMEMBER_DAYS", default=30)
# A refresh token presented again this soon after its rotation is a second browser tab
# refreshing at the same moment, not a thief: it gets a pair of the same session (SPEC §2.3).
REFRESH_REUSE_GRACE_SECONDS = env.int("REFRESH_REUSE_GRACE_SECONDS", default=30)
if not 0 <= REFRESH_REUSE_GRACE_SECONDS <= 300:
    raise ImproperlyConfigured("REFRESH_REUSE_GRACE_SECONDS must be between 0 and 300")
PASSWORD_RESET_TOKEN_MINUTES = 15
INVITATION_TOKEN_HOURS = 72
ACCESS_TOKEN_LIFETIME = timedelta(minutes=ACCESS_TOKEN_MINUTES)
AUTH_THROTTLE_IP_RATE = env.str("AUTH_THROTTLE_IP_RATE", default="30/min")
AUTH_THROTTLE_EMAIL_RATE = env.str("AUTH_THROTTLE_EMAIL_RATE", default="10/min")
DEMO_SEED_ENABLED = env.bool("DEMO_SEED_ENABLED", default=not IS_PRODUCTION_LIKE)
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:3001")

# --- CORS -----------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ALLOWED_ORIGINS", default=["http://localhost:3000", "http://localhost:3001"]
)
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-request-id"]
CORS_EXPOSE_HEADERS = ["X-Total-Count", "Link", "X-Request-ID", "Content-Disposition"]
CORS_URLS_REGEX = r"^/api/.*$"

# --- E-mail ---------------------------------------------------------------------------------
if DJANGO_ENV == "test":
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
elif env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Seconds one SMTP connect/read/write may block (Django's default: forever). The outbox
# dispatcher sends e-mails itself, so one stalled server would hold its whole batch. Set after
# EMAIL_URL's parsed settings, so it applies to them too.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
if not EMAIL_TIMEOUT > 0:
    raise ImproperlyConfigured("EMAIL_TIMEOUT must be a positive number of seconds")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ChefOps <noreply@chefops.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if IS_PRODUCTION_LIKE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The platform's health probe talks plain HTTP to the container.
    SECURE_REDIRECT_EXEMPT = [r"^api/health"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Deployment: the release and the router in front (README "Deploying") -----------------
# The commit this process runs, reported by /api/health as `version` so a deploy can wait for
# its own release: CHEFOPS_VERSION (the image's build argument, or the variable the deploy
# workflows set on the Railway services), else the commit Railway built from a GitHub
# source, else "dev".
RELEASE_VERSION = (
    env.str("CHEFOPS_VERSION", default="").strip()
    or env.str("RAILWAY_GIT_COMMIT_SHA", default="").strip()
    or "dev"
)
# Behind a platform's router every request seems to come from the router unless NUM_PROXIES
# counts it, and the auth rate limits (30/min per IP) would throttle all users together.
# Staging and production refuse NUM_PROXIES=0 unless NO_REVERSE_PROXY=true says clients reach
# the app directly (and the two are not set against each other).
NO_REVERSE_PROXY = env.bool("NO_REVERSE_PROXY", default=False)
if REST_FRAMEWORK["NUM_PROXIES"] < 0:
    raise ImproperlyConfigured("NUM_PROXIES must be 0 or more")
if NO_REVERSE_PROXY and REST_FRAMEWORK["NUM_PROXIES"] > 0:
    raise ImproperlyConfigured(
        f"NO_REVERSE_PROXY=true contradicts NUM_PROXIES={REST_FRAMEWORK['NUM_PROXIES']}: "
        "set one of them"
    )
if IS_PRODUCTION_LIKE and REST_FRAMEWORK["NUM_PROXIES"] == 0 and not NO_REVERSE_PROXY:
    raise ImproperlyConfigured(
        f"DJANGO_ENV={DJANGO_ENV} refuses to start with NUM_PROXIES=0: behind a router (Railway:"
        " NUM_PROXIES=1) every client would share the router's IP in the rate limits; set "
        "NUM_PROXIES to the number of proxies in front, or NO_REVERSE_PROXY=true if there is none"
    )

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=IS_PRODUCTION_LIKE)
# Share of INFO records kept (WARNING and above are always kept; DEBUG is dropped in production).
LOG_INFO_SAMPLE_RATE = env.float("LOG_INFO_SAMPLE_RATE", default=0.1 if IS_PRODUCTION_LIKE else 1.0)
if not 0.0 <= LOG_INFO_SAMPLE_RATE <= 1.0:
    raise ImproperlyConfigured("LOG_INFO_SAMPLE_RATE must be between 0 and 1")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "chefops.logging.RequestIdFilter"},
        "sampling": {
            "()": "chefops.logging.SamplingFilter",
            "info_rate": LOG_INFO_SAMPLE_RATE,
            "drop_debug": IS_PRODUCTION,
        },
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "console",
            "filters": ["sampling", "request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "INFO"},
    },
}

# --- Operations: metrics, quotas, backups (README "Operations") -----------------------------
# Bearer token for GET /metrics; empty means no authentication, which staging/production
# refuse (above) unless METRICS_PUBLIC=true says the network keeps /metrics private.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
# gunicorn.conf.py sets this for its workers (prometheus-client multiprocess mode); without it
# (runserver, tests) metrics live in the process's own registry.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
DB_SIZE_QUOTA_BYTES = env.int("DB_SIZE_QUOTA_BYTES", default=1024**3)
# Directory whose filesystem is reported as free/total disk; empty = the database's directory
# (SQLite file, or PostgreSQL's data_directory when it is local and readable), else BASE_DIR.
DISK_USAGE_PATH = env.str("DISK_USAGE_PATH", default="")
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(_STATE_ROOT / "backups")))
# Retention archives (gzip JSON lines), kept one year.
ARCHIVE_DIR = Path(env.str("ARCHIVE_DIR", default=str(_STATE_ROOT / "archive")))
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=30)
if IS_PRODUCTION_LIKE:
    # Prometheus scrapes the container over plain HTTP, like the health probe.
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# --- Archive and backup storage (README "Archive and backup storage") -----------------------
# Two named storages: "archives" (retention archives) and "backups" (pg_dump files). Empty URL:
# the local ARCHIVE_DIR / BACKUP_DIR; file:///path: another directory; s3://bucket/prefix?…:
# an S3-compatible bucket (chefops/ops/storage_config.py). A container's disk is wiped on every
# deploy, so production refuses local disk unless ALLOW_LOCAL_ARCHIVES=true says it is kept.
# Ignored in tests (like EMAIL_URL): a test never writes to a real bucket; the object-storage
# tests point the storages at buckets of their own S3 server.
ARCHIVE_STORAGE_URL = env.str("ARCHIVE_STORAGE_URL", default="") if DJANGO_ENV != "test" else ""
BACKUP_STORAGE_URL = env.str("BACKUP_STORAGE_URL", default="") if DJANGO_ENV != "test" else ""
ALLOW_LOCAL_ARCHIVES = env.bool("ALLOW_LOCAL_ARCHIVES", default=False)
try:
    STORAGES["archives"] = storage_config.storage_config(
        ARCHIVE_STORAGE_URL, variable="ARCHIVE_STORAGE_URL", dir_setting="ARCHIVE_DIR"
    )
    STORAGES["backups"] = storage_config.storage_config(
        BACKUP_STORAGE_URL, variable="BACKUP_STORAGE_URL", dir_setting="BACKUP_DIR"
    )
except storage_config.StorageURLError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if IS_PRODUCTION and not ALLOW_LOCAL_ARCHIVES:
    _on_disk = [
        variable
        for variable, alias in (
            ("ARCHIVE_STORAGE_URL", "archives"),
            ("BACKUP_STORAGE_URL", "backups"),
        )
        if storage_config.is_local_config(STORAGES[alias])
    ]
    if _on_disk:
        raise ImproperlyConfigured(
            f"DJANGO_ENV=production keeps archives and backups on local disk, which a "
            f"redeploy wipes: set {' and '.join(_on_disk)} to s3://bucket/prefix?… (README "
            f'"Archive and backup storage"), or ALLOW_LOCAL_ARCHIVES=true if the disk is kept'
        )
# The PostgreSQL client tools (pg_dump, pg_restore) backup/restore run; empty: the server's
# major version under /usr/lib/postgresql/<major>/bin when present, else PATH. Their major
# version must be the server's (checked before every run).
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")
# --- Webhooks (README "Webhooks") -----------------------------------------------------------
# http:// targets (local receivers); production accepts https only.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Targets on loopback/private/link-local addresses (tests, local use); refused by default.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Seconds one delivery attempt may take to connect, and to send and read the answer (max 10).
WEBHOOK_TIMEOUT_SECONDS = min(env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0), 10.0)
# Deliveries given up in a row (every attempt failed, ~22 h each) before an endpoint is
# disabled and its company's admins are e-mailed.
WEBHOOK_MAX_FAILURES = env.int("WEBHOOK_MAX_FAILURES", default=5)
# --- Request path: performance (issue #18, docs/benchmarks.md) -------------------------------
# DRF's content negotiation, without parsing Accept for the requests nearly every client sends.
REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"] = (
    "chefops.api.negotiation.ApiContentNegotiation"
)
