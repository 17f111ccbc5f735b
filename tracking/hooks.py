"""Publish "events appended" to whoever subscribed (recsys does, in its ready()).

A plain list, not Django signals: subscribers are few, known at start-up, and an
exception in one must not hide the others' work.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[int]], None]
_subscribers: list[Subscriber] = []


def subscribe(fn: Subscriber) -> None:
    """Call ``fn(event_ids)`` after each committed append. Idempotent."""
    if fn not in _subscribers:
        _subscribers.append(fn)


def publish_appended(event_ids: Sequence[int]) -> None:
    for fn in list(_subscribers):
        try:
            fn(event_ids)
        except Exception:  # the log is the source of truth; subscribers catch up later
            logger.exception("tracking: subscriber %r failed for %d events", fn, len(event_ids))
