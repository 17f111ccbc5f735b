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
        # sequential/next-item leads (recsys_evaluate --protocol loo on MovieLens-100K: it is the
        # strongest single strategy by far); content and trending keep small weights: they answer
        # visitors the sequence model cannot (no history yet) and break its near-ties.
        "for-you": {"strategies": {"sequential/next-item": 1.0, "content/interests": 0.05, "popular/trending": 0.02},
                    "exclude_events": {"purchased": None, "item_viewed": 3600}, "limit": 8},
        "similar": {"strategies": {"similar/items": 1.0}, "exclude_events": {"purchased": None}, "limit": 6},
        "trending": {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 8},
    },
    "STRATEGIES": [
        "recsys.strategies.content.InterestVectors",
        "recsys.strategies.content.SimilarItems",
        "recsys.strategies.trending.Trending",
        "recsys.strategies.sequential.NextItem",
    ],
    # Signed visitor tokens for sockets and the recommendations endpoint.
    "TOKEN_MAX_AGE_SECONDS": 24 * 3600,
    # Bursts of events for one visitor are coalesced into one refresh within this window.
    "PUSH_DEBOUNCE_MS": 50,
}

settings = AppSettings("LIVEREC", DEFAULTS, import_strings=("ITEM_ADAPTERS", "STRATEGIES"))
