"""Settings for the tracking portal, all read from the environment.

With nothing set, the portal runs on SQLite with Celery eager, console SMS and
email and an in-process cache. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY, ALLOWED_HOSTS and DJANGO_DEBUG=false (see .env.example).
"""

import ssl
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

from tracking_portal.local_server import DEFAULT_HOST, DEFAULT_PORT, local_base_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is false.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# What links in messages and tracking_url start with. Unset (development), it
# is the server `make run` started, from the HOST and PORT it passes on.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/") or local_base_url(
    env.str("HOST", default=DEFAULT_HOST), env.str("PORT", default=DEFAULT_PORT)
)
MAP_TILES_URL = env.str("MAP_TILES_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
_MAP_TILES_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(MAP_TILES_URL.replace("{s}", "*")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Counts failed admin logins and refuses logins past the limit.
    "axes",
    "django_htmx",
    # Only so that the API docs use the Swagger UI files it ships (no CDN).
    "ninja",
    "shipments",
    "pages",
    "notifications",
    "analytics",
    # Last: its admin.py joins the apps' admin pages once both are loaded.
    "tracking_portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "tracking_portal.csrf.NoReferrerCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "shipments.api.problems.ProblemsForStrayRequests",
    # Last, as django-axes asks: it turns a refused login into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tracking_portal.urls"
ASGI_APPLICATION = "tracking_portal.asgi.application"
WSGI_APPLICATION = "tracking_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite by default; DATABASE_URL=postgres://… for PostgreSQL. Under
# ASGI, persistent connections (CONN_MAX_AGE) leak one connection per request
# thread, so PostgreSQL goes through psycopg's pool instead.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# The tracking page's read, the one statement PostgreSQL took longer to plan
# than to run, is prepared on each pooled connection (pages/reads.py).
# Behind PgBouncer in transaction mode that needs PgBouncer 1.21+ with
# max_prepared_statements set; otherwise turn it off.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
    # Django's cursors bind parameters on the client and never prepare; only
    # the page read's cursor asks to. psycopg prepares nothing at all with no
    # threshold, and with this one nothing of its own accord.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 1_000_000 if DATABASE_PREPARED_STATEMENTS else None
else:
    # SQLite: wait for a writer rather than fail at once, and take the write
    # lock at BEGIN so that a read-then-write transaction cannot deadlock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the Celery broker, the cache and the live-update bus. Without it,
# tasks run in-process at once and the cache is local memory.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's cache is shared by every process (the notification sweep's
    # enqueued-once marks), on the one shared client (tracking_portal/redis.py).
    CACHES = {"default": {"BACKEND": "tracking_portal.redis.SharedRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Eager Celery still opens a connection to serialise each task; named with a
# host, the in-memory one doesn't warn "No hostname was supplied" every time.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only when it has finished, and handed back to the
# queue if its worker dies, so a crash loses nothing; the services make
# redelivery harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker logs through LOGGING below (its masking handler) rather than
# replacing the root logger's handlers with its own unmasked ones.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# Redis on a request's path (the API's rate limit, the page cache, live
# push, publishing tasks) waits this many seconds at most to connect or for a
# reply; after a failure, this process leaves that server alone for the
# back-off and fails open meanwhile (tracking_portal/redis.py).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
REDIS_OUTAGE_BACKOFF_SECONDS = env.float("REDIS_OUTAGE_BACKOFF_SECONDS", default=5.0)
# A publish never waits forever on a hung broker. Longer than kombu's one
# second BRPOP, which a worker's consumer waits on.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # A worker takes from the first of its queues that has a task, in the
    # order -Q (or CELERY_TASK_QUEUES) names them, rather than in turn.
    "queue_order_strategy": "priority",
    "socket_timeout": max(2.0, REDIS_SOCKET_TIMEOUT),
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
}
if REDIS_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, sharing one client per channel (see broker.py).
    CELERY_BROKER_TRANSPORT = "tracking_portal.broker:Transport"
if REDIS_URL.startswith("rediss://"):
    # Named by class rather than by scheme, the transport is told of TLS
    # here; certificates are verified, as by the live-update hub.
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
# Unless told to reuse connections, Celery's Django fixup closes a prefork
# worker's whole PostgreSQL pool around every task, and reopening it costs
# more than the task. Connections are kept; tracking_portal/celery.py keeps a
# healthy one with its worker between tasks and drops a broken one.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# A status change's texts and webhook have the default queue to
# themselves. Behind it, in the order the messages worker takes them (it
# takes from the first queue that has a task, see queue_order_strategy):
# "notices", the messages of ETA moves, alerts and staff's notes, which a
# van's new ETAs can leave for every parcel at once; then "later", the
# emails a status change's planning leaves for a task of their own
# (notifications.tasks.LATER). The work behind the pages (ETAs worked out
# after the vans' pings, alerts, imports, analytics) goes to "background",
# so that a morning of pings never queues a status change's messages
# behind it (bench/rush.py). The Procfile runs a worker for the messages
# and one for the background; a worker started without -Q takes all four,
# in this order.
CELERY_TASK_QUEUES = (Queue("celery"), Queue("notices"), Queue("later"), Queue("background"))
CELERY_TASK_ROUTES = {
    "notifications.plan_notices": {"queue": "notices"},
    "notifications.send_later": {"queue": "later"},
    "shipments.*": {"queue": "background"},
    "analytics.*": {"queue": "background"},
}
# Periodic jobs (celery -A tracking_portal beat). The notification sweep
# plans status changes whose task was lost (Redis down at commit) and
# re-enqueues notifications still queued a while after they were due, or
# whose worker died mid-send; held quiet-hours SMS go out through it too.
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 30.0},
    "shipments-purge-location-pings": {"task": "shipments.purge_location_pings", "schedule": 3600.0},
    # Alerts that time alone opens (stuck, late, no retry): at least every 30 s.
    "shipments-evaluate-alerts": {"task": "shipments.evaluate_alerts", "schedule": 30.0},
    # Page views into the database, then the days touched into the rollup:
    # the analytics are at most a minute old.
    "analytics-refresh": {"task": "analytics.refresh", "schedule": 60.0},
    # The ETA's history for today, per brand with a route today, worked out
    # before the day's first recompute would have to (once a day each; the
    # runs between find nothing due).
    "shipments-work-out-eta-history": {"task": "shipments.work_out_eta_history", "schedule": 600.0},
    # Vans that stopped pinging: their routes' windows widen, then go.
    "shipments-refresh-silent-etas": {"task": "shipments.refresh_silent_etas", "schedule": 60.0},
}
# Tracking-page views and support clicks counted for analytics (one Redis
# HINCRBY per page); off only to measure what it costs (bench/analytics.py).
PAGE_VIEW_COUNTING = env.bool("PAGE_VIEW_COUNTING", default=True)
# A warm tracking page or widget frame is answered before Django's handler
# (pages/fast.py), with the same headers; false sends every page through
# Django.
FAST_CACHED_PAGES = env.bool("FAST_CACHED_PAGES", default=True)
# Missed scans are detected as a driver's pings are recorded
# (shipments.visits); False turns that off (bench/alerts.py compares the
# ping recording rate with it on and off).
ALERTS_DETECT_ON_PINGS = True
# The portal's own ETA (shipments.eta): recomputed for a van's whole route
# after its pings and scans, at most once per ETA_DEBOUNCE_SECONDS per route
# (the last trigger wins); False turns it off (bench/eta_pings.py).
ETA_ON_PINGS = env.bool("ETA_ON_PINGS", default=True)
ETA_DEBOUNCE_SECONDS = env.int("ETA_DEBOUNCE_SECONDS", default=5)
# shipment.eta_changed goes out when the window moves by more than this.
ETA_CHANGED_MINUTES = env.int("ETA_CHANGED_MINUTES", default=15)
# The page notes the driver's position is old past this, and beat
# recomputes a silent van's route from now, its windows widened, told to
# nobody; past ETA_WITHDRAW_POSITION_SECONDS its estimates are withdrawn
# (the brand's promise shows again) until the van is heard from.
ETA_STALE_POSITION_SECONDS = env.int("ETA_STALE_POSITION_SECONDS", default=300)
ETA_WITHDRAW_POSITION_SECONDS = env.int("ETA_WITHDRAW_POSITION_SECONDS", default=1800)
# Road travel times from a routing server (shipments/eta_travel.py): its
# base URL (empty: none, the straight line with the learned detour), its
# kind, and the longest a recompute waits on it before falling back.
ETA_ROUTER_URL = env.str("ETA_ROUTER_URL", default="").strip()
ETA_ROUTER_KIND = env.str("ETA_ROUTER_KIND", default="osrm").strip().lower() or "osrm"
ETA_ROUTER_TIMEOUT_S = env.float("ETA_ROUTER_TIMEOUT_S", default=1.0)
if ETA_ROUTER_KIND not in ("osrm", "valhalla"):
    raise ImproperlyConfigured(f"ETA_ROUTER_KIND must be osrm or valhalla, not {ETA_ROUTER_KIND!r}.")
if ETA_ROUTER_URL and (urlsplit(ETA_ROUTER_URL).scheme not in ("http", "https") or not urlsplit(ETA_ROUTER_URL).netloc):
    raise ImproperlyConfigured(f"ETA_ROUTER_URL must be an http:// or https:// URL, not {ETA_ROUTER_URL!r}.")
if not 0 < ETA_ROUTER_TIMEOUT_S <= 30:
    raise ImproperlyConfigured("ETA_ROUTER_TIMEOUT_S must be more than 0 and at most 30 seconds.")
# Each web or worker process publishes planning at most once per this many
# milliseconds, the status changes committed meanwhile sharing a message;
# 0 publishes each commit's changes from the committing thread.
NOTIFICATION_PUBLISH_INTERVAL_MS = env.int("NOTIFICATION_PUBLISH_INTERVAL_MS", default=20)
# Sends of one planned batch run in parallel threads: they wait on other
# people's servers (Twilio, SMTP, brands' webhook endpoints).
NOTIFICATION_SEND_THREADS = env.int("NOTIFICATION_SEND_THREADS", default=8)
# Brands' webhook URLs must resolve to public addresses, checked when saved
# and on every connection (shipments/outbound.py); a developer's local
# receiver needs this on, which it is by default only with DEBUG.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
# How long a worker's claim on a notification lasts; longer than the hard
# time limit, so the first sender has stopped before a second may start.
NOTIFICATION_LEASE_SECONDS = env.int("NOTIFICATION_LEASE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 30)
# How long a due notification may sit queued before the sweep re-enqueues it.
NOTIFICATION_SWEEP_GRACE_SECONDS = env.int("NOTIFICATION_SWEEP_GRACE_SECONDS", default=60)

# Admin logins: at most AXES_FAILURE_LIMIT failures per username and per
# client address (each on its own) within AXES_COOLOFF_TIME; past that even
# the right password is refused until the window passes. Attempts are kept
# in the database, so every process counts them alike, with or without Redis.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
# The client address as uvicorn resolved it (--forwarded-allow-ips), never a
# header a client can set.
AXES_CLIENT_IP_CALLABLE = "tracking_portal.clients.client_address"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Leaflet comes from the django-leaflet package; only its static files are
# used (its app pulls in GeoDjango, which needs GDAL).
STATICFILES_DIRS = [BASE_DIR / "static", Path(find_spec("leaflet").submodule_search_locations[0]) / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Under uvicorn there is no runserver to serve static files in development,
# so WhiteNoise serves them straight from the finders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# EMAIL_URL in django-environ's form (smtp+tls://user:pass@host:587), turned
# into Django's MAILERS; the console when unset.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_email_options = (
    {
        option: _email[key]
        for option, key in [
            ("host", "EMAIL_HOST"),
            ("port", "EMAIL_PORT"),
            ("username", "EMAIL_HOST_USER"),
            ("password", "EMAIL_HOST_PASSWORD"),
            ("use_tls", "EMAIL_USE_TLS"),
            ("use_ssl", "EMAIL_USE_SSL"),
            ("file_path", "EMAIL_FILE_PATH"),
        ]
        if _email.get(key) not in (None, "")
    }
    if _email["EMAIL_BACKEND"].endswith(("smtp.EmailBackend", "filebased.EmailBackend"))
    else {}
)
if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
    _email_options.pop("file_path", None)
    _email_options["timeout"] = 10
MAILERS = {"default": {"BACKEND": _email["EMAIL_BACKEND"], "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Parcel tracking <tracking@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

SMS_BACKEND = env.str("SMS_BACKEND", default="console")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")

# Security headers. Every page refuses to be framed; the embed widget opens
# its own frame-ancestors per brand.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    # Map tiles come from MAP_TILES_URL's host, whatever its scheme.
    "img-src": [CSP.SELF, "data:", "https:", _MAP_TILES_ORIGIN],
    # The tracking page's live updates (server-sent events) and its
    # fragments are same-origin.
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True
# The visitor's language choice (?lang= on the public pages, Django's
# set_language view): read by every place that sets the cookie.
LANGUAGE_COOKIE_AGE = 365 * 86400
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# security.W003 looks for Django's CSRF middleware by its exact path; ours is
# a subclass of it (tracking_portal/csrf.py), and a test checks it stays in
# MIDDLEWARE.
SILENCED_SYSTEM_CHECKS = ["security.W003"]
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_tokens": {"()": "tracking_portal.log_filters.MaskTrackingTokens"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own default handler for its loggers prints request paths
        # unmasked in DEBUG; its records go through the masking one instead.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # uvicorn's access log shows request paths, tracking tokens included:
        # it goes through the masking handler instead of uvicorn's own.
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Celery gives its task logger a handler of its own, unmasked, unless
        # it already has one: this one.
        "celery.task": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# How long a tracking link keeps working after delivery.
TRACKING_LINK_DAYS_AFTER_DELIVERY = env.int("TRACKING_LINK_DAYS_AFTER_DELIVERY", default=30)
# How long raw GPS pings are kept before the retention sweep deletes them.
LOCATION_PING_RETENTION_DAYS = env.int("LOCATION_PING_RETENTION_DAYS", default=7)

# The ingest API (/api/v1/): requests allowed per key per window
# ("requests/seconds"), and the largest body it reads, JSON and uploads.
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="1200/60")
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=2 * 1024 * 1024)
API_MAX_UPLOAD_BYTES = env.int("API_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
# Every other body (tracking_portal/body_limit.py answers 413 above these,
# before reading): the admin's uploads, and the public pages' forms.
ADMIN_MAX_UPLOAD_BYTES = env.int("ADMIN_MAX_UPLOAD_BYTES", default=12 * 1024 * 1024)
# The CSV import's upload page takes a day's spreadsheet (100,000 rows are
# about 18 MB); the import itself refuses more than 50 MB.
ADMIN_MAX_IMPORT_BYTES = env.int("ADMIN_MAX_IMPORT_BYTES", default=50 * 1024 * 1024)
PUBLIC_MAX_BODY_BYTES = env.int("PUBLIC_MAX_BODY_BYTES", default=64 * 1024)
# Django reads no form or JSON body beyond the largest those limits let
# through, and keeps bodies up to that size in memory: only an upload above
# it goes to a temporary file, and never more of one than its limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, PUBLIC_MAX_BODY_BYTES)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
