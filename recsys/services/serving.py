"""The serve log: which strategies produced each list a visitor was shown (by recommendation id)."""
from __future__ import annotations

import logging
from typing import Iterable

from django.db import transaction

from ..models import RecommendationLog
from .projection import derived_write, pipelined

logger = logging.getLogger(__name__)

CHANNELS = ("page", "push", "resync", "poll", "api")


def log_entry(recs, channel: str, seq: int | None = None) -> RecommendationLog:
    """An unsaved log row for a ``RecommendationList`` (see ``record``)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown serve channel {channel!r}; valid channels: {', '.join(CHANNELS)}")
    strategies: dict[str, list[str]] = {}
    for rec in recs.items:
        strategies[rec.item_id] = sorted({r.strategy for r in rec.reasons if r.strategy})
    return RecommendationLog(rec_id=recs.id, visitor_id=recs.visitor_id[:64], slot=recs.slot, channel=channel,
                             seq=seq, items=[r.item_id for r in recs.items], strategies=strategies)


def record(entries: Iterable[RecommendationLog]) -> None:
    """Store serve-log rows. Never raises: a lost log row must not cost the visitor their list."""
    rows = list(entries)
    if not rows:
        return
    try:
        # The setting and the insert in one round trip (pipelined), between the BEGIN and COMMIT.
        with transaction.atomic(), pipelined():
            derived_write()  # analytics: no wait for the WAL flush (see projection.derived_write)
            RecommendationLog.objects.bulk_create(rows, ignore_conflicts=True)
    except Exception:
        logger.exception("recsys: could not write %d serve-log rows", len(rows))


def record_served(recs, channel: str, seq: int | None = None) -> None:
    record([log_entry(recs, channel, seq)])
