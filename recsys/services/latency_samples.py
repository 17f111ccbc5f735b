"""Operational samples the admin dashboard charts (push latency), kept in Redis, bounded."""
from __future__ import annotations

import logging

from ..stats import PUSH_LATENCY_KEY

logger = logging.getLogger(__name__)

# The newest samples kept: enough for stable p99s, small enough to read on every dashboard view.
MAX_SAMPLES = 10_000


_clients: dict[str, object] = {}


def _client(url: str):
    """One Redis client (with its connection pool) per process and broker URL.

    ``app.connection_for_write()`` opened a new broker connection on every push: 7% of a
    realtime worker's time under bench_freshness's load.
    """
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url)
    return client


def record_push_latencies(samples_ms) -> None:
    """Append push latencies (milliseconds from the server receiving a visitor's newest event
    to its list being pushed) to PUSH_LATENCY_KEY, newest first, in one round trip. The
    realtime task measures them as it pushes and records its whole batch at the end. Best
    effort: never raises."""
    from celery import current_app

    samples = [round(float(ms), 1) for ms in samples_ms]
    if not samples:
        return
    try:
        pipe = _client(current_app.conf.broker_url).pipeline(transaction=False)
        pipe.lpush(PUSH_LATENCY_KEY, *samples)
        pipe.ltrim(PUSH_LATENCY_KEY, 0, MAX_SAMPLES - 1)
        pipe.execute()
    except Exception as exc:  # a metric must never fail a push
        logger.warning("recsys: could not record push latency: %s", exc)
