"""Operational samples the admin dashboard charts (push latency), kept in Redis, bounded."""
from __future__ import annotations

import logging

from django.utils import timezone

from tracking.models import Event

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


def record_push_latency(visitor_id: str) -> float | None:
    """Milliseconds from the server receiving the visitor's newest event to its list being
    pushed now; appended to PUSH_LATENCY_KEY (newest first). Best effort: never raises."""
    from celery import current_app

    try:
        received = (Event.objects.filter(visitor_id=visitor_id).order_by("-id")
                    .values_list("received_at", flat=True).first())
        if received is None:
            return None
        ms = (timezone.now() - received).total_seconds() * 1000.0
        pipe = _client(current_app.conf.broker_url).pipeline(transaction=False)
        pipe.lpush(PUSH_LATENCY_KEY, round(ms, 1))
        pipe.ltrim(PUSH_LATENCY_KEY, 0, MAX_SAMPLES - 1)
        pipe.execute()
        return ms
    except Exception as exc:  # a metric must never fail a push
        logger.warning("recsys: could not record push latency: %s", exc)
        return None
