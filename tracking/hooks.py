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


# --- Privacy: apps that derive data from a visitor's events export and erase it too ------------

VisitorHook = Callable[[str], dict]
_forgetters: list[VisitorHook] = []
_exporters: list[VisitorHook] = []


def on_forget(fn: VisitorHook) -> None:
    """Call ``fn(visitor_id) -> {what: count}`` when a visitor is forgotten. Idempotent."""
    if fn not in _forgetters:
        _forgetters.append(fn)


def on_export(fn: VisitorHook) -> None:
    """Call ``fn(visitor_id) -> {section: data}`` when a visitor's data is exported. Idempotent."""
    if fn not in _exporters:
        _exporters.append(fn)


def forget(visitor_id: str) -> dict:
    # Unlike publish_appended, a failing eraser must fail the whole forget: a half-erased
    # visitor reported as forgotten is worse than an error the staff member can retry.
    out: dict = {}
    for fn in list(_forgetters):
        out.update(fn(visitor_id))
    return out


def export(visitor_id: str) -> dict:
    out: dict = {}
    for fn in list(_exporters):
        out.update(fn(visitor_id))
    return out
