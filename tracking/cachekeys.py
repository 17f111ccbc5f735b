"""Names of every per-visitor key LiveRec keeps in Redis/Valkey, from one place.

A key never holds a raw visitor id: it holds a keyed hash (HMAC-SHA256 with SECRET_KEY,
truncated), so a key list (``SCAN``, ``MONITOR``, a dump) shows no visitor and a key cannot
be turned back into an id by hashing guesses. Forgetting a visitor finds every key of theirs
from the same names (``visitor_pattern``), so a store added here is erased without a hand list.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

# 32 hex characters (128 bits): collisions are out of reach for any number of visitors.
DIGEST_CHARS = 32


@lru_cache(maxsize=65536)
def _digest(secret: str, visitor_id: str) -> str:
    return hmac.new(secret.encode(), visitor_id.encode(), hashlib.sha256).hexdigest()[:DIGEST_CHARS]


def visitor_digest(visitor_id: str) -> str:
    """The keyed hash that stands for ``visitor_id`` in key names."""
    from django.conf import settings

    return _digest(settings.SECRET_KEY, visitor_id)


def visitor_key(namespace: str, visitor_id: str, *parts: str) -> str:
    """``namespace:<digest>[:part...]``, e.g. ``visitor_key("lr:last", vid)``."""
    return ":".join((namespace, visitor_digest(visitor_id), *parts))


def visitor_pattern(namespace: str, visitor_id: str) -> str:
    """A ``SCAN MATCH`` pattern for every ``visitor_key(namespace, visitor_id, ...)`` with parts."""
    return f"{namespace}:{visitor_digest(visitor_id)}:*"
