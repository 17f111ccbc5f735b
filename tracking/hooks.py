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


# "Visitors erased": the privacy services (tracking.privacy) deleted events. Subscribers
# drop or rebuild what they derived from them. Unlike "appended", a failing subscriber is
# an error the caller must see (personal data may survive), so nothing is swallowed here.
ErasedSubscriber = Callable[..., "dict | None"]
_erased_subscribers: list[ErasedSubscriber] = []


def subscribe_erased(fn: ErasedSubscriber) -> None:
    """Call ``fn(visitor_ids, user_ids=..., reason=...)`` after events were deleted. Idempotent.

    ``reason`` is ``"retention"`` (their old events are gone: rebuild their state from what
    remains). A forget does not publish here: it loops over the per-visitor stores registered
    with ``tracking.privacy.register_store``, which erase what they hold.
    ``fn`` may return a dict of counts, merged into the privacy service's report.
    """
    if fn not in _erased_subscribers:
        _erased_subscribers.append(fn)


def publish_erased(visitor_ids: Sequence[str], *, user_ids: Sequence[str] = (), reason: str) -> dict:
    return _run_all(_erased_subscribers, "erase",
                    lambda fn: fn(list(visitor_ids), user_ids=list(user_ids), reason=reason))


def _run_all(subscribers: list, what: str, call: Callable) -> dict:
    """``call(fn)`` for every subscriber, their count dicts merged; every one runs (each erases
    what it can) before the first failure is raised."""
    report: dict = {}
    errors: list[BaseException] = []
    for fn in list(subscribers):
        try:
            report.update(call(fn) or {})
        except Exception as exc:
            logger.exception("tracking: %s subscriber %r failed", what, fn)
            errors.append(exc)
    if errors:
        raise errors[0]
    return report


# "Retention ran": events before ``cutoff`` are gone for everyone. Subscribers delete what
# they keep per visitor and time-stamp (a serve log) from before it: the per-visitor rebuild of
# "erased" covers what is derived from events, not what was recorded beside them. Errors
# propagate as for "erased".
ExpiredSubscriber = Callable[..., "dict | None"]
_expired_subscribers: list[ExpiredSubscriber] = []


def subscribe_expired(fn: ExpiredSubscriber) -> None:
    """Call ``fn(cutoff)`` after a retention sweep deleted the events before ``cutoff``. Idempotent.

    ``fn`` may return a dict of counts, merged into the retention report."""
    if fn not in _expired_subscribers:
        _expired_subscribers.append(fn)


def publish_expired(cutoff) -> dict:
    return _run_all(_expired_subscribers, "retention", lambda fn: fn(cutoff))


# Exporters: what subscribers derived about visitors, for a data export (tracking.privacy).
Exporter = Callable[..., dict]
_exporters: list[Exporter] = []


def subscribe_export(fn: Exporter) -> None:
    """Register ``fn(visitor_ids, user_ids=...) -> dict`` (JSON-serialisable). Idempotent."""
    if fn not in _exporters:
        _exporters.append(fn)


def collect_export(visitor_ids: Sequence[str], *, user_ids: Sequence[str] = ()) -> dict:
    out: dict = {}
    for fn in list(_exporters):
        out.update(fn(list(visitor_ids), user_ids=list(user_ids)))
    return out
