"""recsys's subscription to the tracking log."""
from __future__ import annotations

import logging
import time
from typing import Sequence

logger = logging.getLogger(__name__)

# After a failed enqueue, skip further attempts for this long: each attempt against a dead
# broker costs the ingest request the broker's connect timeout (2 s here). Nothing is lost:
# the beat catch-up (and the next enqueue) applies everything after the projection cursor.
BROKER_DOWN_BACKOFF_SECONDS = 5.0
_skip_until = 0.0

# Coalescing: ``process_events`` takes no ids (the cursor knows what is pending), so while one
# is queued and not yet started, another adds nothing. A cache flag (SET NX) marks "one is
# queued"; the task clears it as it starts, before reading the log, so an event committed
# after that enqueues afresh. Measured on bench_ingest: a Celery publish per request was ~10%
# of the ingest CPU, and under load the realtime worker drained hundreds of no-op tasks.
# The TTL bounds the damage of a lost task: the next append after it enqueues again.
QUEUED_FLAG = "liverec:process-events:queued"
QUEUED_FLAG_TTL_SECONDS = 5


def _claim_enqueue() -> bool:
    """True if this caller should enqueue (no task known to be waiting)."""
    from django.core.cache import cache

    try:
        return bool(cache.add(QUEUED_FLAG, 1, QUEUED_FLAG_TTL_SECONDS))
    except Exception:  # noqa: BLE001 - cache down: enqueue anyway (a duplicate task is harmless)
        return True


def task_started() -> None:
    """Called by ``process_events`` before it reads the log."""
    from django.core.cache import cache

    try:
        cache.delete(QUEUED_FLAG)
    except Exception:  # noqa: BLE001 - the flag expires on its own
        pass


def on_events_appended(event_ids: Sequence[int]) -> None:
    """Called after an append commits: enqueue the projection update.

    If the broker is down the event is still safe in the log; the next task
    (or ``manage.py recsys_replay --catch-up``) applies it from the cursor.
    """
    global _skip_until
    from ..tasks import process_events

    if time.monotonic() < _skip_until or not _claim_enqueue():
        return
    try:
        process_events.apply_async(retry=False)
    except Exception as exc:  # broker down: never fail the ingest request
        task_started()  # nothing is queued after all
        _skip_until = time.monotonic() + BROKER_DOWN_BACKOFF_SECONDS
        logger.warning("recsys: could not enqueue processing of %d events (retrying enqueues in %.0f s; "
                       "the catch-up applies them from the cursor): %s", len(event_ids), BROKER_DOWN_BACKOFF_SECONDS, exc)
