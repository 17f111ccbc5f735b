"""Fixed-window counters in the Django cache, one round trip per batch of counters.

Used by the ingest rate limits (per visitor, per IP) and the bot filter (inhuman
event rates). On Django's Redis backend the increments of one request go out as a
single pipeline (INCRBY + EXPIRE per key): 1 round trip instead of 2 per key, which
matters at a few hundred ingest requests a second. Other cache backends use
``add`` + ``incr``. A cache outage never fails an ingest: counters fail open.
"""
from __future__ import annotations

import logging
from typing import Sequence

from django.core.cache import caches

logger = logging.getLogger(__name__)


_clients: dict[tuple, object] = {}


def redis_pipeline(alias: str):
    """A non-transactional pipeline on the cache's Redis client, or None for other backends.

    Uses ``RedisCache._cache``: Django has no public API for pipelines, and one round trip
    per request is what keeps the ingest fast. The client (thread-safe, with its connection
    pool) is kept per process and server list: Django's cache objects are per thread, and
    under ASGI every request runs in a new thread, so Django's own client would open a new
    Redis connection and build ~170 response callbacks on every request.
    """
    cache = caches[alias]
    backend = getattr(cache, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    if get_client is None or type(cache).__name__ != "RedisCache":
        return None
    ident = (alias, tuple(map(str, getattr(backend, "_servers", ()))), repr(getattr(backend, "_pool_options", "")))
    client = _clients.get(ident)
    if client is None:
        client = _clients[ident] = get_client(None, write=True)
    return client.pipeline(transaction=False)


def key(alias: str, name: str) -> str:
    return caches[alias].make_and_validate_key(name)


def add_increments(pipe, alias: str, increments: Sequence[tuple[str, int, int]]) -> None:
    for k, n, ttl in increments:
        full = key(alias, k)
        pipe.incrby(full, n)
        pipe.expire(full, ttl)


def incr_many(alias: str, increments: Sequence[tuple[str, int, int]]) -> list[int] | None:
    """Add ``n`` to each ``(key, n, ttl_seconds)``; returns the new totals, or None if the cache is down."""
    if not increments:
        return []
    cache = caches[alias]
    try:
        pipe = redis_pipeline(alias)
        if pipe is not None:
            add_increments(pipe, alias, increments)
            replies = pipe.execute()
            return [int(v) for v in replies[::2]]
        totals = []
        for key, n, ttl in increments:
            cache.add(key, 0, ttl)
            try:
                totals.append(cache.incr(key, n))
            except ValueError:  # expired between add and incr
                cache.set(key, n, ttl)
                totals.append(n)
        return totals
    except Exception as exc:  # noqa: BLE001 - any cache failure: the log matters more than the limit
        logger.warning("tracking: cache %r unavailable for counters (%s); failing open", alias, exc)
        return None


def get_flag(alias: str, key: str) -> bool:
    try:
        return bool(caches[alias].get(key))
    except Exception as exc:  # noqa: BLE001
        logger.warning("tracking: cache %r unavailable (%s)", alias, exc)
        return False


def set_flag(alias: str, key: str, ttl: int) -> None:
    try:
        caches[alias].set(key, 1, ttl)
    except Exception as exc:  # noqa: BLE001
        logger.warning("tracking: cache %r unavailable (%s)", alias, exc)
