"""Periodic privacy work (scheduled by the site's Celery beat, see demo/settings.py)."""
from __future__ import annotations

from celery import shared_task

from . import partitions, privacy


# On the batch queue: a retention sweep may take seconds and must not delay pushes.
@shared_task(queue="liverec.batch", ignore_result=True)
def apply_retention() -> dict:
    """Delete events past ``LIVEREC_TRACKING['RETENTION_DAYS']``; projections follow."""
    return privacy.apply_retention()


@shared_task(queue="liverec.batch", ignore_result=True)
def ensure_event_partitions() -> list[str]:
    """Create the event log's partitions ahead (``EVENT_PARTITIONS_AHEAD``); idempotent."""
    return partitions.ensure_partitions()
