"""Fixed-window counters in the Django cache, one round trip per batch of counters.

Used by the ingest rate limits (per visitor, per IP) and the bot filter (inhuman
event rates). On Django's Redis backend the increments of one request go out as a
single pipeline (INCRBY + EXPIRE per key): 1 round trip instead of 2 per key, which
matters at a few hundred ingest requests a second. Other cache backends use
``add`` + ``incr``. A cache outage never fails an ingest: counters fail open.

The ingest path's Redis client has a short timeout (``LIVEREC_TRACKING["CACHE_TIMEOUT_MS"]``,
for connecting and for each reply) and no retry: a stalled server (SIGSTOP, a paused VM)
accepts connections and never answers, and with the cache's default timeouts each ingest
thread waited for the whole stall. After a failure the cache is skipped for
``CACHE_RETRY_SECONDS``, so a stall costs one timeout per process, not one per request.
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

from django.core.cache import caches

from .conf import settings

logger = logging.getLogger(__name__)

# After a failed or timed-out call, the ingest path leaves the cache alone this long.
CACHE_RETRY_SECONDS = 1.0
_down_until: dict[str, float] = {}

_clients: dict[tuple, object] = {}


def is_down(alias: str) -> bool:
    """True while the cache failed within the last ``CACHE_RETRY_SECONDS`` (skip it: fail open)."""
    return time.monotonic() < _down_until.get(alias, 0.0)


def mark_down(alias: str, exc: BaseException) -> None:
    if not is_down(alias):
        logger.warning("tracking: cache %r unavailable (%s); failing open for %.0f s", alias, exc, CACHE_RETRY_SECONDS)
    _down_until[alias] = time.monotonic() + CACHE_RETRY_SECONDS


def redis_client(alias: str):
    """The ingest path's shared redis-py client for the cache (short timeouts), or None for
    backends other than Django's Redis cache."""
    cache = caches[alias]
    backend = getattr(cache, "_cache", None)
    if getattr(backend, "get_client", None) is None or not type(cache).__name__.endswith("RedisCache"):
        return None
    timeout_ms = float(settings.CACHE_TIMEOUT_MS)
    ident = (alias, tuple(map(str, getattr(backend, "_servers", ()))), repr(getattr(backend, "_pool_options", "")),
             timeout_ms)
    client = _clients.get(ident)
    if client is None:
        timeout = timeout_ms / 1000.0
        options = {**backend._pool_options, "socket_timeout": timeout, "socket_connect_timeout": timeout}
        pool = backend._pool_class.from_url(backend._servers[0], **options)
        client = _clients[ident] = backend._client(connection_pool=pool)
    return client


def redis_pipeline(alias: str):
    """A non-transactional pipeline on the cache's Redis client, or None for other backends.

    Uses ``RedisCache._cache``: Django has no public API for pipelines, and one round trip
    per request is what keeps the ingest fast. The client (thread-safe, with its connection
    pool) is kept per process and server list: Django's cache objects are per thread, and
    under ASGI every request runs in a new thread, so Django's own client would open a new
    Redis connection and build ~170 response callbacks on every request.
    """
    client = redis_client(alias)
    return None if client is None else client.pipeline(transaction=False)


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
    if is_down(alias):
        return None
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
        mark_down(alias, exc)
        return None


def delete_keys(alias: str, names: Sequence[str], patterns: Sequence[str] = ()) -> int:
    """Delete the keys ``names`` and every key matching one of ``patterns`` (cache key names,
    before Django's prefix); returns how many existed. For a forget: ``SCAN`` walks the whole
    keyspace in steps, which is fine for a rare erase and never blocks the server."""
    client = redis_client(alias)
    if client is None:
        cache = caches[alias]
        existed = sum(cache.has_key(n) for n in names)
        cache.delete_many(list(names))
        return existed  # other backends cannot list keys: counters keyed by pattern expire alone
    full = [key(alias, n) for n in names]
    for pattern in patterns:
        full.extend(client.scan_iter(match=key(alias, pattern), count=1000))
    return int(client.delete(*full)) if full else 0


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
