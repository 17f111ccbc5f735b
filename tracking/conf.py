"""``LIVEREC_TRACKING`` settings. Read them only through ``tracking.conf.settings``."""
from __future__ import annotations

from .appsettings import AppSettings

DEFAULTS = {
    # Origins allowed to post events (scheme://host[:port]); same-origin is always allowed.
    "ALLOWED_ORIGINS": [],
    # Public key the tracker sends; identifies the site, not a secret.
    "SITE_KEY": "",
    # Secret key for server-to-server posts (imports, a backend relaying events), sent as the
    # X-LiveRec-Server-Key header: only such a request may name a visitor_id other than its
    # signed visitor cookie's, and give events their own user_id. "" (default): none may.
    "SERVER_KEY": "",
    "MAX_BODY_BYTES": 64 * 1024,
    "MAX_EVENTS_PER_BATCH": 100,
    "MAX_PROPERTIES_BYTES": 4 * 1024,
    "MAX_ITEM_ID_LENGTH": 128,
    # Custom event names must match this; built-in names are always valid.
    # (matched in full: a name with a trailing newline does not pass.)
    "CUSTOM_EVENT_PATTERN": r"[a-z][a-z0-9_]{1,63}",
    # Client clocks further than this in the future/past are rejected.
    "MAX_CLOCK_SKEW_SECONDS": 24 * 3600,
    "MAX_EVENT_AGE_SECONDS": 7 * 24 * 3600,
    "SESSION_TIMEOUT_SECONDS": 30 * 60,
    "VISITOR_COOKIE": "lr_vid",
    "VISITOR_COOKIE_MAX_AGE": 365 * 24 * 3600,
    "FLUSH_INTERVAL_MS": 1000,
    "FLUSH_SIZE": 20,
    # Ingest rate limits, counted in events per fixed window ({"EVENTS": n, "SECONDS": s}, or None
    # to disable). Over a limit the batch is refused with 429 and Retry-After; the tracker re-sends.
    # A person produces a few events a minute; the IP limit leaves room for offices behind one NAT.
    "RATE_LIMIT_VISITOR": {"EVENTS": 600, "SECONDS": 60},
    "RATE_LIMIT_IP": {"EVENTS": 30000, "SECONDS": 60},
    # Cache alias (Django CACHES) holding the rate and bot counters; Redis/Valkey in production.
    "RATE_LIMIT_CACHE": "default",
    # Timeout of each Redis call on the ingest path (connect and reply), in milliseconds. Beyond
    # it the call fails open (no rate count, session from the log) and the cache is skipped for
    # a second: a stalled Redis never holds an ingest request for longer than this.
    "CACHE_TIMEOUT_MS": 50,
    # Behind a reverse proxy, the header holding the client address chain (e.g. "X-Forwarded-For").
    # Read only when the request comes from one of TRUSTED_PROXIES; the client address is then the
    # rightmost address in the chain that is not a trusted proxy (the leftmost is the client's word).
    "CLIENT_IP_HEADER": "",
    # Addresses or CIDR networks of the reverse proxies in front of the site ("10.0.0.0/8",
    # "127.0.0.1"). Empty (default): no proxy is trusted and REMOTE_ADDR is the client.
    "TRUSTED_PROXIES": [],
    # Events whose User-Agent matches (case-insensitive) are stored with is_bot=True; projections
    # skip them. Conservative on purpose: "(?<!cu)" spares CUBOT phones; HeadlessChrome is not
    # listed because site owners test with it (add it here to exclude it).
    "BOT_USER_AGENT_PATTERN": (
        r"(?<!cu)bot\b|bot/|crawl|spider|slurp|archiver|facebookexternalhit|embedly|"
        r"curl/|wget/|python-requests|python-urllib|go-http-client|java/|okhttp|libwww|scrapy|"
        r"phantomjs|chrome-lighthouse|pingdom"
    ),
    # More events than this from one visitor arriving inside SECONDS (server time) is not a person:
    # those events, and the visitor's next ones until BOT_FLAG_SECONDS of quiet, get is_bot=True.
    "BOT_RATE": {"EVENTS": 60, "SECONDS": 10},
    "BOT_FLAG_SECONDS": 3600,
    # True: the tracker sends nothing until the page calls liverec.consent(true) (opt-in regimes).
    "CONSENT_REQUIRED": False,
    # Privacy (tracking/privacy.py). Events older than this many days are deleted by the
    # periodic ``tracking.tasks.apply_retention`` (None keeps the log forever).
    "RETENTION_DAYS": None,
    # The event log is partitioned by received time (tracking/partitions.py): one partition
    # per "month", "week" or "day" (UTC), created this many intervals ahead by the periodic
    # ``tracking.tasks.ensure_event_partitions``. Retention drops whole partitions.
    "EVENT_PARTITION_INTERVAL": "month",
    "EVENT_PARTITIONS_AHEAD": 2,
    # Client IP kept on each event as properties["$ip"]: "none", "truncated" (to the
    # prefixes below, like Google Analytics' IP anonymisation) or "full".
    "IP_STORAGE": "none",
    "IP_V4_PREFIX": 24,
    "IP_V6_PREFIX": 48,
    # The User-Agent is only used for the bot verdict (is_bot) unless this allows keeping it
    # as properties["$ua"].
    "STORE_USER_AGENT": False,
}

settings = AppSettings("LIVEREC_TRACKING", DEFAULTS)
