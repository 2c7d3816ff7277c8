"""Kontor settings: one module, every knob from the environment.

With nothing set, Kontor runs on the embedded default: SQLite in WAL mode, the
in-memory channel layer, Celery on kombu's filesystem transport, files and data
under ``KONTOR_DATA_DIR`` and mail printed to the console. ``KONTOR_ENV=production``
turns on the production checks; ``DATABASE_URL``, ``REDIS_URL``, the storage and
the mail variables switch each part to its production service. The README lists
every variable.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_file, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Mode -------------------------------------------------------------------
KONTOR_ENV = env_choice("KONTOR_ENV", ("embedded", "production"), "embedded")
PRODUCTION = KONTOR_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must not be on when KONTOR_ENV=production.")

DATA_DIR = Path(env_str("KONTOR_DATA_DIR", str(BASE_DIR / "data"))).resolve()


def _embedded_secret_key() -> str:
    """A random key kept in the data folder, made on first start (embedded only)."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# --- Security ---------------------------------------------------------------
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when KONTOR_ENV=production "
            "(50 or more random characters, e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'`)."
        )
    SECRET_KEY = _embedded_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when KONTOR_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if env_bool("KONTOR_BEHIND_PROXY", False):
    # The load balancer terminates TLS and says so in this header; only trust it
    # when a proxy that sets (and strips) it sits in front of every request.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=300)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Applications -----------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "accounts",
    "messenger",
    "archive",
    "compliance",
    "hr",
    # Kontor's own commands (manage.py health); no models.
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
                "accounts.context_processors.kontor",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
_SQLITE_OPTIONS = {
    # Web process and Celery worker write at once: WAL plus IMMEDIATE
    # transactions and a generous busy timeout avoid "database is locked".
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    if urlsplit(DATABASE_URL).scheme not in ("postgres", "postgresql", "pgsql", "sqlite"):
        raise ImproperlyConfigured(
            "DATABASE_URL must be a postgres:// (PostgreSQL) or sqlite:/// URL, "
            f"not {urlsplit(DATABASE_URL).scheme}://…"
        )
    _db = dict(
        dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
            conn_health_checks=True,
        )
    )
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["OPTIONS"] = dict(_SQLITE_OPTIONS)
    elif env_bool("DATABASE_POOL", True):
        # Under ASGI every database hop of a consumer closes "old" connections;
        # psycopg's pool makes that a return to the pool instead of a new login.
        if _db.get("CONN_MAX_AGE"):
            raise ImproperlyConfigured("DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other.")
        _db["OPTIONS"] = {
            **dict(_db.get("OPTIONS") or {}),  # type: ignore[call-overload]
            "pool": {
                "min_size": env_int("DATABASE_POOL_MIN", 2, minimum=1),
                "max_size": env_int("DATABASE_POOL_MAX", 20, minimum=2),
                # How long a database call waits for a connection before it fails.
                # A daphne process makes all its calls on one thread: waiting 30 s
                # (psycopg's default) stalls every socket of the process.
                "timeout": env_int("DATABASE_POOL_TIMEOUT", 5, minimum=1),
                # Connections are renewed after this many seconds, and closed when
                # idle this long (above min_size): a failover or a proxy that drops
                # old connections is noticed without a failed call.
                "max_lifetime": env_int("DATABASE_POOL_MAX_LIFETIME", 1800, minimum=60),
                "max_idle": env_int("DATABASE_POOL_MAX_IDLE", 300, minimum=10),
                # Each connection is checked before it is handed out
                # (CONN_HEALTH_CHECKS, above); config/db.py makes the first dead
                # one found replace all of them at once.
            },
        }
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "kontor.sqlite3",
        "OPTIONS": dict(_SQLITE_OPTIONS),
    }
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Opening SQLite (and its PRAGMAs) on every database hop of a websocket
    # costs a tenth of the server's time; a connection per thread is kept.
    _db.setdefault("CONN_MAX_AGE", None)
    if not _db["CONN_MAX_AGE"]:
        _db["CONN_MAX_AGE"] = None
    _db["CONN_HEALTH_CHECKS"] = True
    # A file, not memory, so that a real server process started by the browser
    # tests reads the same test database as the test itself (it is handed the
    # path). One per test process: two runs side by side must not share it.
    _db["TEST"] = {"NAME": str(DATA_DIR / f"test-kontor-{os.getpid()}.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache --------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 closes idle pooled sockets after 5 s (the layer's own
                # blocking read is 5 s too) and caps a pool at 100 connections:
                # no socket timeout and a large pool keep idle and busy servers up.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 10_000, minimum=10),
                    }
                ],
                "prefix": "kontor:asgi",
                "capacity": 10_000,
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "kontor",
        },
        # Heartbeats of beat, workers and the archive tasks (config.health).
        "health": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": None,
        },
    }
else:
    # A socket's queue must hold what arrives while its consumer waits on the
    # database; the default of 100 would silently drop live events under load.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # Heartbeats of beat, the worker and the archive tasks (config.health):
        # a folder, because web, worker and beat are separate processes.
        "health": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "health"),
            "TIMEOUT": None,
        },
    }

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_DIR = DATA_DIR / "celery" / "queue"
CELERY_BROKER_PROCESSED_DIR = DATA_DIR / "celery" / "processed"
CELERY_BROKER_CONTROL_DIR = DATA_DIR / "celery" / "control"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport needs no server; producer and consumer share
    # one folder. Its folders must exist before a worker starts (config.celery).
    # The host means nothing to it; without one kombu warns on every connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_PROCESSED_DIR),
        "control_folder": str(CELERY_BROKER_CONTROL_DIR),
        "store_processed": False,
        "polling_interval": 0.1,
    }
# One queue per Kontor: two instances (or test runs) sharing a Redis keep their tasks apart.
CELERY_TASK_DEFAULT_QUEUE = env_str("KONTOR_CELERY_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celery" / "beat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Every minute, archive what changed in the journal into retention records.
    "compliance-snapshot-due": {"task": "compliance.snapshot_due", "schedule": 60.0},
    # Hourly: prove every journal event reached a record; archive and alert if not.
    "compliance-reconcile": {"task": "compliance.reconcile", "schedule": 3600.0},
    # Daily: delete the content of records past retention that no legal hold covers.
    "compliance-purge-expired": {"task": "compliance.purge_expired", "schedule": 24 * 3600.0},
    # Daily: seal every chain head, with a copy in the archive storage and a timestamp.
    "compliance-seal": {"task": "compliance.seal", "schedule": 24 * 3600.0},
    # Daily: recompute every hash, link, seal and copy; mail the contacts on failure.
    "compliance-verify": {"task": "compliance.verify", "schedule": 24 * 3600.0},
    # Every five minutes: queue again the exports whose task was lost (broker down at the request).
    "compliance-export-requeue": {"task": "compliance.export_requeue", "schedule": 300.0},
    # Every minute: carry out the offboardings HR scheduled for a later time.
    "accounts-offboard-due": {"task": "accounts.offboard_due", "schedule": 60.0},
    # Every minute: mail missed messages and relay to external contacts (docs/email.md).
    "messenger-notify-due": {"task": "messenger.notify_due", "schedule": 60.0},
    # Every 30 s: proves beat and a worker alive, and measures the queue's lag (config.health).
    "kontor-heartbeat": {"task": "kontor.heartbeat", "schedule": 30.0},
}

# --- Health and metrics (docs/deployment.md, "Health and metrics") -----------
# /healthz and `manage.py health` fail when beat or the worker has not been heard
# from for this many seconds (beat sends a heartbeat every 30 s) …
KONTOR_HEALTH_HEARTBEAT_MAX_AGE = env_int("KONTOR_HEALTH_HEARTBEAT_MAX_AGE", 180, minimum=60)
# … when the minutely snapshot sweep last completed longer ago than this …
KONTOR_HEALTH_SWEEP_MAX_AGE = env_int("KONTOR_HEALTH_SWEEP_MAX_AGE", 300, minimum=120)
# … and when the newest seal or verification (both daily) is older than this.
KONTOR_HEALTH_SEAL_MAX_AGE = env_int("KONTOR_HEALTH_SEAL_MAX_AGE", 26 * 3600, minimum=3600)
KONTOR_HEALTH_VERIFY_MAX_AGE = env_int("KONTOR_HEALTH_VERIFY_MAX_AGE", 26 * 3600, minimum=3600)
# /metrics answers only requests with "Authorization: Bearer <this token>";
# unset, /metrics answers 404 (Prometheus: `authorization: {credentials: …}`).
KONTOR_METRICS_TOKEN = env_str("KONTOR_METRICS_TOKEN")
# Heartbeats are per Kontor, like its queue (two sharing a Redis or a data folder).
CACHES["health"]["KEY_PREFIX"] = f"kontor:health:{CELERY_TASK_DEFAULT_QUEUE}"  # type: ignore[index]
# Load balancers and scrapers talk plain HTTP to each process: no HTTPS redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# --- Authentication ---------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Kontor] "
# Sign-in throttling (docs/deployment.md, "Sign-in throttling"). Only failed
# passwords count towards the failure limits (accounts.adapter), so colleagues
# behind one NAT address are not stopped by each other's sign-ins:
# - sign-in attempts per address and minute, whatever their outcome;
# - failed sign-ins per address and minute, then the address waits;
# - failed sign-ins for one account from one address per 5 minutes: an attacker
#   elsewhere locks out only their own address, never the account's owner.
KONTOR_LOGIN_RATE_PER_MINUTE = env_int("KONTOR_LOGIN_RATE_PER_MINUTE", 30, minimum=1)
KONTOR_LOGIN_FAILURES_PER_MINUTE = env_int("KONTOR_LOGIN_FAILURES_PER_MINUTE", 10, minimum=1)
KONTOR_LOGIN_ACCOUNT_FAILURES = env_int("KONTOR_LOGIN_ACCOUNT_FAILURES", 5, minimum=1)
ACCOUNT_RATE_LIMITS = {
    "login": f"{KONTOR_LOGIN_RATE_PER_MINUTE}/m/ip",
    "login_failed": f"{KONTOR_LOGIN_FAILURES_PER_MINUTE}/m/ip,{KONTOR_LOGIN_ACCOUNT_FAILURES}/5m/key",
}
if env_bool("KONTOR_BEHIND_PROXY", False):
    # The address these limits count is the client's as the proxy saw it (the
    # last X-Forwarded-For entry), not the proxy's own, which every sign-in shares.
    ALLAUTH_TRUSTED_PROXY_COUNT = 1
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("KONTOR_COMPANY_NAME", "Kontor")

# Sign-up is closed: people join by invitation. When domains are given, anyone
# with a verified address in one of them may also sign up.
KONTOR_SIGNUP_DOMAINS = [d.lower().lstrip("@") for d in env_list("KONTOR_SIGNUP_DOMAINS")]
KONTOR_INVITATION_DAYS = env_int("KONTOR_INVITATION_DAYS", 7, minimum=1)
KONTOR_COMPANY_NAME = env_str("KONTOR_COMPANY_NAME", "Kontor")

# --- Messaging --------------------------------------------------------------
KONTOR_MESSAGE_MAX_CHARS = env_int("KONTOR_MESSAGE_MAX_CHARS", 10_000, minimum=100)
# How long after sending an author may edit (0: always). Deleting is always allowed.
KONTOR_EDIT_WINDOW_SECONDS = env_int("KONTOR_EDIT_WINDOW_SECONDS", 3600, minimum=0)
# A reconnecting client that missed more events than this reloads the page.
KONTOR_RESUME_LIMIT = env_int("KONTOR_RESUME_LIMIT", 500, minimum=10)
# Conversations up to this size show "seen by" markers under messages.
KONTOR_SEEN_BY_MAX_MEMBERS = env_int("KONTOR_SEEN_BY_MAX_MEMBERS", 8, minimum=2)

# Optional single sign-on through OpenID Connect (Keycloak, Entra ID, Okta, …).
OIDC_SERVER_URL = env_str("OIDC_SERVER_URL")
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
if OIDC_SERVER_URL:
    if not (env_str("OIDC_CLIENT_ID") and env_str("OIDC_CLIENT_SECRET")):
        raise ImproperlyConfigured("OIDC_SERVER_URL needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET.")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": env_str("OIDC_PROVIDER_ID", "sso"),
                "name": env_str("OIDC_PROVIDER_NAME", "Company single sign-on"),
                "client_id": env_str("OIDC_CLIENT_ID"),
                "secret": env_str("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": OIDC_SERVER_URL},
            }
        ],
    }
    # Only the company's own identity provider may trust an email as verified.
    SOCIALACCOUNT_EMAIL_VERIFICATION = "none"

# --- Compliance archive -----------------------------------------------------
# Optional: records also carry an HMAC-SHA256 under this key (keep it outside
# the database, e.g. in a secret store), so a rewrite needs the key as well.
KONTOR_ARCHIVE_HMAC_KEY = env_str("KONTOR_ARCHIVE_HMAC_KEY")
# Four eyes: an auditor's case must be approved by a second auditor before its
# results (search hits, conversations, exports) can be opened.
KONTOR_AUDIT_FOUR_EYES = env_bool("KONTOR_AUDIT_FOUR_EYES", False)
# The company's legal time zone: which calendar day and year a record was made
# in (the retention clock starts at that year's end).
KONTOR_TIME_ZONE = env_str("KONTOR_TIME_ZONE", "Europe/Berlin")
try:
    ZoneInfo(KONTOR_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as error:
    raise ImproperlyConfigured(f"KONTOR_TIME_ZONE: unknown time zone {KONTOR_TIME_ZONE!r}.") from error
# Who hears of archive problems (late events, failed verification), comma-separated.
KONTOR_COMPLIANCE_CONTACTS = env_list("KONTOR_COMPLIANCE_CONTACTS")
# Optional: the daily seal over all chain heads is also stamped by this RFC 3161
# timestamp authority; its tokens are checked against the CA certificate(s) in
# KONTOR_TSA_CA_FILE (PEM), which verify_archive keeps needing for old tokens.
KONTOR_TSA_URL = env_url("KONTOR_TSA_URL")
_tsa_ca_file = env_file("KONTOR_TSA_CA_FILE")
KONTOR_TSA_CA_FILE = str(_tsa_ca_file) if _tsa_ca_file else ""
if KONTOR_TSA_URL and not KONTOR_TSA_CA_FILE:
    raise ImproperlyConfigured("KONTOR_TSA_URL needs KONTOR_TSA_CA_FILE to check the tokens it returns.")

# --- Content-Security-Policy: everything from our own server ----------------
_FORM_ACTION = [SELF]
if OIDC_SERVER_URL:
    # Signing in through SSO posts a form that redirects to the identity provider.
    _oidc = urlsplit(OIDC_SERVER_URL)
    _FORM_ACTION.append(f"{_oidc.scheme}://{_oidc.netloc}")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "media-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": _FORM_ACTION,
        "frame-ancestors": [NONE],
    }
}

# --- Files ------------------------------------------------------------------
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"  # never served directly: downloads go through permission checks
STATIC_URL = "/static/"
# Production serves the collected, hashed files (`collectstatic`); elsewhere
# WhiteNoise serves them straight from the apps and no folder is needed.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))) if PRODUCTION else None
STATICFILES_DIRS = [BASE_DIR / "static"]
KONTOR_STORAGE = env_choice("KONTOR_STORAGE", ("filesystem", "s3"), "filesystem")
if KONTOR_STORAGE == "s3":
    if not env_str("S3_BUCKET"):
        raise ImproperlyConfigured("KONTOR_STORAGE=s3 needs S3_BUCKET.")
    _default_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "addressing_style": env_choice("S3_ADDRESSING_STYLE", ("auto", "path", "virtual"), "auto"),
            "default_acl": None,
            # Keys are content hashes: writing the same key twice writes the same bytes.
            "file_overwrite": True,
            "querystring_auth": True,
            "querystring_expire": env_int("S3_URL_EXPIRY_SECONDS", 60, minimum=5),
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "file_permissions_mode": 0o640},
    }
# The archive storage keeps write-once copies of retention records and of the
# files they reference (compliance.archive_store): a folder of read-only files
# by default, an S3 bucket with Object Lock (enabled when the bucket is made)
# in production. Each object is locked until its record's retention ends.
KONTOR_ARCHIVE_STORAGE = env_choice("KONTOR_ARCHIVE_STORAGE", ("filesystem", "s3"), "filesystem")
KONTOR_ARCHIVE_LOCK_MODE = env_choice(
    "KONTOR_ARCHIVE_LOCK_MODE", ("compliance", "governance"), "compliance"
).upper()
if KONTOR_ARCHIVE_STORAGE == "s3":
    if not env_str("ARCHIVE_S3_BUCKET"):
        raise ImproperlyConfigured("KONTOR_ARCHIVE_STORAGE=s3 needs ARCHIVE_S3_BUCKET.")
    _archive_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("ARCHIVE_S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "addressing_style": env_choice("S3_ADDRESSING_STYLE", ("auto", "path", "virtual"), "auto"),
            "default_acl": None,
            # An archived object is never replaced (archive_store refuses too).
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    _archive_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(DATA_DIR / "archive"),
            "file_permissions_mode": 0o440,
            "directory_permissions_mode": 0o750,
        },
    }
STORAGES = {
    "default": _default_storage,
    "archive": _archive_storage,
    "staticfiles": {
        "BACKEND": (
            "config.static_storage.StaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production, serve static files straight from the apps (no collectstatic).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
# The web app manifest (install on a phone's home screen) is JSON of its own type.
WHITENOISE_MIMETYPES = {".webmanifest": "application/manifest+json"}
FILE_UPLOAD_PERMISSIONS = 0o640
# The largest file anyone may share, in megabytes.
KONTOR_UPLOAD_MAX_BYTES = env_int("KONTOR_UPLOAD_MAX_MB", 100, minimum=1) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Mail -------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("Set only one of EMAIL_USE_TLS and EMAIL_USE_SSL.")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{KONTOR_COMPANY_NAME} <kontor@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Email bridge (docs/email.md) -------------------------------------------
# Where Kontor is reached in a browser: links in notification mails point here.
KONTOR_BASE_URL = env_url("KONTOR_BASE_URL") or "http://localhost:8000"
# Replies go to "<local>+<token>@<domain>" of this address (plus addressing:
# one mailbox receives every reply). Empty: the address of DEFAULT_FROM_EMAIL.
KONTOR_EMAIL_REPLY_ADDRESS = env_str("KONTOR_EMAIL_REPLY_ADDRESS")
# The hour (company time zone) at which daily digests go out.
KONTOR_EMAIL_DIGEST_HOUR = env_int("KONTOR_EMAIL_DIGEST_HOUR", 8, minimum=0)
# Incoming mail through an IMAP mailbox (``manage.py receive_mail imap``).
KONTOR_IMAP_HOST = env_str("KONTOR_IMAP_HOST")
KONTOR_IMAP_PORT = env_int("KONTOR_IMAP_PORT", 993, minimum=1)
KONTOR_IMAP_SSL = env_bool("KONTOR_IMAP_SSL", True)
KONTOR_IMAP_USER = env_str("KONTOR_IMAP_USER")
KONTOR_IMAP_PASSWORD = env_str("KONTOR_IMAP_PASSWORD")
KONTOR_IMAP_FOLDER = env_str("KONTOR_IMAP_FOLDER", "INBOX")
# Incoming mail delivered by the company's MTA (``manage.py receive_mail lmtp``).
KONTOR_LMTP_HOST = env_str("KONTOR_LMTP_HOST", "127.0.0.1")
KONTOR_LMTP_PORT = env_int("KONTOR_LMTP_PORT", 8024, minimum=1)
# The largest incoming mail accepted, in megabytes (attachments included).
KONTOR_EMAIL_MAX_BYTES = env_int("KONTOR_EMAIL_MAX_MB", 25, minimum=1) * 1024 * 1024

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper(),
    },
    # aiosmtpd logs every SMTP/LMTP command of the reply listener at INFO.
    "loggers": {"django.db.backends": {"level": "INFO"}, "mail.log": {"level": "WARNING"}},
}
