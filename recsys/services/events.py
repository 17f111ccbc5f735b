"""recsys's subscription to the tracking log."""
from __future__ import annotations

import logging
import time
from typing import Sequence

from . import coalesce, dispatch

logger = logging.getLogger(__name__)

# After a failed enqueue, skip further attempts for this long: each attempt against a dead
# broker costs the ingest request the broker's connect timeout (2 s here). Nothing is lost:
# the beat catch-up (and the next enqueue) applies everything after the projection cursor.
BROKER_DOWN_BACKOFF_SECONDS = 5.0
_skip_until = 0.0

# Coalescing (``services.coalesce``): ``process_events`` takes no ids, so while one is queued
# and not yet started, another adds nothing. Measured on bench_ingest: a Celery publish per
# request was ~10% of the ingest CPU, and under load the realtime worker drained hundreds of
# no-op tasks.
QUEUED_FLAG = "liverec:process-events:queued"
QUEUED_FLAG_TTL_SECONDS = 5


def task_started() -> None:
    """Called by ``process_events`` before it reads the log."""
    coalesce.release(QUEUED_FLAG)


def on_events_appended(event_ids: Sequence[int]) -> None:
    """Called after an append commits: enqueue the projection update.

    If the broker is down the event is still safe in the log; the next task
    (or ``manage.py recsys_replay --catch-up``) applies it from the cursor.
    """
    global _skip_until
    if time.monotonic() < _skip_until or not coalesce.claim(QUEUED_FLAG, QUEUED_FLAG_TTL_SECONDS):
        return
    try:
        dispatch.task("process_events").apply_async(retry=False)
    except Exception as exc:  # broker down: never fail the ingest request
        task_started()  # nothing is queued after all
        _skip_until = time.monotonic() + BROKER_DOWN_BACKOFF_SECONDS
        logger.warning("recsys: could not enqueue processing of %d events (retrying enqueues in %.0f s; "
                       "the catch-up applies them from the cursor): %s", len(event_ids), BROKER_DOWN_BACKOFF_SECONDS, exc)
