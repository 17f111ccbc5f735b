"""Settings for the LiveRec demo site.

Everything that differs between machines comes from the environment:
DATABASE_URL, REDIS_URL (``python -m devstack`` sets both for the embedded
servers), SECRET_KEY, DEBUG, ALLOWED_HOSTS.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless the environment turns it on: the demo's own entry point (`python -m devstack demo`,
# `make demo`) sets DEBUG=1, so a site that copies these settings never inherits debug pages.
DEBUG = os.environ.get("DEBUG", "0") == "1"
# The repository's key, for a DEBUG demo only. Visitor cookies, tokens and sessions are signed
# with SECRET_KEY: with a key from the repository anyone forges them. tracking.E001 (a system
# check) refuses it, and any other published default, when DEBUG is off.
DEMO_SECRET_KEY = "liverec-demo-insecure-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY") or (DEMO_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (SECRET_KEY == DEMO_SECRET_KEY and not DEBUG):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set in the environment, to a key of your own, when DEBUG "
                               "is off (DEBUG=0).")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "tracking",
    "recsys",
    "demo.catalogue",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tracking.middleware.VisitorMiddleware",
]

ROOT_URLCONF = "demo.urls"
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
WSGI_APPLICATION = None
ASGI_APPLICATION = "demo.asgi.application"

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/liverec")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("LIVEREC_TEST_DB_NAME", "test_liverec")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        # channels_redis' layer with the group_send_many extension (one script call per push batch).
        "BACKEND": "recsys.channel_layer.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout, the same as channels_redis' 5 s BZPOPMIN:
        # they race and idle sockets log timeouts. A longer socket timeout removes the race.
        # LIVEREC_CHANNEL_HOSTS (comma-separated URLs) shards the layer over several servers.
        "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30}
                             for url in os.environ.get("LIVEREC_CHANNEL_HOSTS", REDIS_URL).split(",")],
                   "prefix": os.environ.get("LIVEREC_CHANNEL_PREFIX", "asgi")},
    }
}


def _redis_db(url: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


# The cache gets its own Redis database: clearing it (tests, operators) never drops the
# Celery queues or the channel layer, which live in REDIS_URL's database.
CACHE_URL = os.environ.get("LIVEREC_CACHE_URL") or _redis_db(REDIS_URL, 1)
# recsys.cache.RedisCache: Django's backend sharing one redis-py client (see its docstring).
CACHES = {"default": {"BACKEND": "recsys.cache.RedisCache", "LOCATION": CACHE_URL}}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# Acks late, prefetch 1, the batch queue as default, connect retries: liverec.celery.DEFAULTS.

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves static files under the ASGI server; in DEBUG straight from the apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# LiveRec: one dict per app, read through each app's conf.py.
LIVEREC_TRACKING = {
    "ALLOWED_ORIGINS": ["http://127.0.0.1:8000", "http://localhost:8000"],
    "SITE_KEY": os.environ.get("LIVEREC_SITE_KEY", "demo-site-key"),
    # Imports and server-to-server posts naming a visitor (X-LiveRec-Server-Key); none by default.
    "SERVER_KEY": os.environ.get("LIVEREC_SERVER_KEY", ""),
}
LIVEREC = {
    "ITEM_ADAPTERS": ["demo.catalogue.adapters.FilmAdapter"],
    # The written interest summary (SmolLM2 on one thread in the batch worker by default);
    # LIVEREC_SUMMARY_BACKEND=recsys.summaries.DisabledSummarizer turns it off.
    "SUMMARY": {"BACKEND": os.environ.get("LIVEREC_SUMMARY_BACKEND", "recsys.summaries.SmolLM2Summarizer"),
                "OPTIONS": {"threads": 1}},
    "STRATEGY_THREADS": int(os.environ.get("LIVEREC_STRATEGY_THREADS", "0")),
    # LIVEREC_FULL_SOFTMAX_MAX_ITEMS=0 trains the sequence model with sampled softmax at any
    # catalogue size (e.g. to compare both losses with recsys_evaluate).
    "SEQUENTIAL": {"FULL_SOFTMAX_MAX_ITEMS": int(os.environ.get("LIVEREC_FULL_SOFTMAX_MAX_ITEMS", "5000"))},
    # bench_freshness compares intervals with it (recsys.conf: 1000).
    "ASSOCIATION_FOLD_INTERVAL_MS": int(os.environ.get("LIVEREC_ASSOCIATION_FOLD_INTERVAL_MS", "1000")),
}

# Under ASGI each request's sync code runs in its own thread, so persistent connections
# (CONN_MAX_AGE) are never reused: bench_ingest measured one new PostgreSQL session per
# request (261 sessions for 260 requests). Django's psycopg pool shares connections
# across threads (14 sessions for the same run). The pool replaces CONN_MAX_AGE.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1, "max_size": int(os.environ.get("LIVEREC_DB_POOL_SIZE", "8")),
    # How long a request waits for a connection. With PostgreSQL down every request waits this
    # long before ingest can answer 503 + Retry-After (reliability: 10 s measured, too slow for
    # the tracker's flush); a request still waiting after 3 s is overload, and a retry is right.
    "timeout": 3}
# Celery beat: the catch-ups, retention, association pruning and sequence-model training
# (liverec.schedule.beat_schedule documents each).
from liverec.schedule import beat_schedule  # noqa: E402

CELERY_BEAT_SCHEDULE = beat_schedule(catch_up_seconds=float(os.environ.get("LIVEREC_CATCH_UP_SECONDS", "30")))
