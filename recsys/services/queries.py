"""Query embeddings: one place that turns a visitor's search text into a vector.

``embed_query(text)`` is what content/query, the recommendations endpoint's ``q`` and search
call. A repeated query is not embedded again: an in-process LRU answers first, then the
shared cache (``QUERY_EMBEDDING_CACHE_SECONDS``, keyed by encoder name + SHA-256 of the
normalised text, so switching encoders never serves a vector of the old one and the cache
holds no readable query text). Embedding one short query cost 5-10 ms of a web process's CPU
(MiniLM, one thread); a cache hit costs one Redis GET, or nothing from the LRU.
"""
from __future__ import annotations

import hashlib
import logging
import unicodedata
from functools import lru_cache

import numpy as np
from django.core.cache import cache

from ..conf import settings
from ..encoders import get_encoder

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 256


def normalise(text: str) -> str:
    """NFC, whitespace collapsed, trimmed to ``MAX_QUERY_CHARS``: the text that is embedded."""
    return " ".join(unicodedata.normalize("NFC", text or "").split())[:MAX_QUERY_CHARS]


def _cache_key(encoder_name: str, text: str) -> str:
    return f"lr:qv:{hashlib.sha256(encoder_name.encode()).hexdigest()[:16]}:{hashlib.sha256(text.encode()).hexdigest()}"


@lru_cache(maxsize=1024)
def _embed(encoder_name: str, text: str) -> bytes:
    key, ttl = _cache_key(encoder_name, text), settings.QUERY_EMBEDDING_CACHE_SECONDS
    if ttl:
        try:
            stored = cache.get(key)
        except Exception as exc:  # noqa: BLE001 - the cache only saves work
            logger.warning("recsys: query embedding cache unavailable (%s)", exc)
            stored = None
        if isinstance(stored, bytes):
            return stored
    vector = np.asarray(get_encoder().encode([text])[0], dtype=np.float32).tobytes()
    if ttl:
        try:
            cache.set(key, vector, ttl)
        except Exception as exc:  # noqa: BLE001
            logger.warning("recsys: query embedding not cached (%s)", exc)
    return vector


def embed_query(text: str) -> np.ndarray:
    """The current encoder's vector of ``normalise(text)`` (float32, read-only)."""
    vector = np.frombuffer(_embed(get_encoder().name, normalise(text)), dtype=np.float32)
    return vector


def forget_cached() -> None:
    """Drop this process's LRU (tests; an encoder swapped at run time)."""
    _embed.cache_clear()
