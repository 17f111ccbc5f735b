"""``LIVEREC`` settings. Read them only through ``recsys.conf.settings``."""
from __future__ import annotations

from tracking.appsettings import AppSettings

DEFAULTS = {
    # Text encoder backend: {"BACKEND": dotted path, "OPTIONS": {...}}.
    "ENCODER": {"BACKEND": "recsys.encoders.SentenceTransformerEncoder", "OPTIONS": {}},
    # Host models mirrored into the catalogue projection (dotted paths to ItemAdapter classes).
    "ITEM_ADAPTERS": [],
    # Interest model.
    "EVENT_WEIGHTS": {
        "item_viewed": 1.0, "item_clicked": 1.5, "recommendation_clicked": 1.5, "rated": 1.0,
        "added_to_cart": 3.0, "purchased": 5.0, "searched": 1.0, "not_interested": -2.0,
        "removed_from_cart": -0.5,
    },
    "LONG_TERM_HALF_LIFE_HOURS": 24 * 14,
    "SHORT_TERM_HALF_LIFE_HOURS": 0.5,
    # Slots: which strategies with which weights, and the rules applied to the fused list.
    "SLOTS": {
        "for-you": {"strategies": {"content/interests": 1.0, "popular/trending": 0.2},
                    "exclude_events": {"purchased": None, "item_viewed": 3600}, "limit": 8},
        "similar": {"strategies": {"similar/items": 1.0}, "exclude_events": {"purchased": None}, "limit": 6},
        "trending": {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 8},
    },
    "STRATEGIES": [
        "recsys.strategies.content.InterestVectors",
        "recsys.strategies.content.SimilarItems",
        "recsys.strategies.trending.Trending",
    ],
    # Signed visitor tokens for sockets and the recommendations endpoint.
    "TOKEN_MAX_AGE_SECONDS": 24 * 3600,
    # Bursts of events for one visitor are coalesced into one refresh within this window.
    # 250 ms: quick human clicks land 100-250 ms apart; a lone event is still pushed at once.
    "PUSH_DEBOUNCE_MS": 250,
    # Live push (recsys.services.push): the first change after a quiet spell is pushed at once;
    # changes less than PUSH_DEBOUNCE_MS apart wait for one trailing push, held at most this long.
    "PUSH_MAX_DELAY_MS": 2000,
    # The widget polls the JSON endpoint this often when its socket cannot connect.
    "WIDGET_POLL_SECONDS": 15,
}

settings = AppSettings("LIVEREC", DEFAULTS, import_strings=("ITEM_ADAPTERS", "STRATEGIES"))
