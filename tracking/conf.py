"""``LIVEREC_TRACKING`` settings. Read them only through ``tracking.conf.settings``."""
from __future__ import annotations

from .appsettings import AppSettings

DEFAULTS = {
    # Origins allowed to post events (scheme://host[:port]); same-origin is always allowed.
    "ALLOWED_ORIGINS": [],
    # Public key the tracker sends; identifies the site, not a secret.
    "SITE_KEY": "",
    "MAX_BODY_BYTES": 64 * 1024,
    "MAX_EVENTS_PER_BATCH": 100,
    "MAX_PROPERTIES_BYTES": 4 * 1024,
    "MAX_ITEM_ID_LENGTH": 128,
    # Custom event names must match this; built-in names are always valid.
    "CUSTOM_EVENT_PATTERN": r"^[a-z][a-z0-9_]{1,63}$",
    # Client clocks further than this in the future/past are rejected.
    "MAX_CLOCK_SKEW_SECONDS": 24 * 3600,
    "MAX_EVENT_AGE_SECONDS": 7 * 24 * 3600,
    "SESSION_TIMEOUT_SECONDS": 30 * 60,
    "VISITOR_COOKIE": "lr_vid",
    "VISITOR_COOKIE_MAX_AGE": 365 * 24 * 3600,
    "FLUSH_INTERVAL_MS": 1000,
    "FLUSH_SIZE": 20,
    # Privacy (tracking/privacy.py). Events older than this many days are deleted by the
    # periodic ``tracking.tasks.apply_retention`` (None keeps the log forever).
    "RETENTION_DAYS": None,
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
