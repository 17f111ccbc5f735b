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


def on_events_appended(event_ids: Sequence[int]) -> None:
    """Called after an append commits: enqueue the projection update.

    If the broker is down the event is still safe in the log; the next task
    (or ``manage.py recsys_replay --catch-up``) applies it from the cursor.
    """
    global _skip_until
    from ..tasks import process_events

    if time.monotonic() < _skip_until:
        return
    try:
        process_events.apply_async(retry=False)
    except Exception as exc:  # broker down: never fail the ingest request
        _skip_until = time.monotonic() + BROKER_DOWN_BACKOFF_SECONDS
        logger.warning("recsys: could not enqueue processing of %d events (retrying enqueues in %.0f s; "
                       "the catch-up applies them from the cursor): %s", len(event_ids), BROKER_DOWN_BACKOFF_SECONDS, exc)
