"""recsys's subscription to the tracking log."""
from __future__ import annotations

import logging
from typing import Sequence

logger = logging.getLogger(__name__)


def on_events_appended(event_ids: Sequence[int]) -> None:
    """Called after an append commits: enqueue the projection update.

    If the broker is down the event is still safe in the log; the next task
    (or ``manage.py recsys_replay --catch-up``) applies it from the cursor.
    """
    from ..tasks import process_events

    try:
        process_events.apply_async(retry=False)
    except Exception as exc:  # broker down: never fail the ingest request
        logger.warning("recsys: could not enqueue processing of %d events: %s", len(event_ids), exc)
