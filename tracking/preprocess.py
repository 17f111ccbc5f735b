"""Preprocessing verdicts decided at append time: sessions, rapid repeats, bots.

The raw log keeps every row; these are columns projections read (``session_id``,
``is_repeat``, ``is_bot``). The fast path answers everything for a batch in one Redis
round trip: the visitor's last event (session continuity and repeat detection,
cached for ``SESSION_TIMEOUT_SECONDS``), the sticky bot flag and the rate counters.
Without a cached last event (a new session, or the cache lost) the log itself is
asked, so a cache outage never splits sessions or loses a verdict's input.
Measured on the ingest benchmark: this replaced a ``DISTINCT ON`` query per batch.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from . import bots, cachekeys, counters
from .conf import settings
from .models import Event
from .validation import CleanEvent

logger = logging.getLogger(__name__)

# Repeats of the visitor's previous (name, item) within this window are flagged, not dropped.
REPEAT_WINDOW = timedelta(seconds=2)


@dataclass
class Last:
    session_id: str
    occurred_at: datetime
    name: str
    item_id: str


@dataclass
class Verdicts:
    session_ids: list[str]
    repeats: list[bool]
    bots: list[bool]
    new_last: Last | None = None  # to cache after the insert, when it changed


# A constant statement on a plain psycopg cursor (prepared by the server after a few runs),
# not the ORM: it runs on every batch of a visitor the cache does not know (their first, or
# after the cache lost them), and building the queryset cost more than the index lookup.
_LAST_SQL = (f"SELECT session_id, occurred_at, name, item_id FROM {Event._meta.db_table} "
             "WHERE visitor_id = %s ORDER BY occurred_at DESC, id DESC LIMIT 1")


def _last_from_log(visitor_id: str) -> Last | None:
    import psycopg
    from django.db import connection

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        row = cursor.execute(_LAST_SQL, [visitor_id]).fetchone()
    return Last(*row) if row else None


def assign_sessions(events: Sequence[CleanEvent], last: Last | None) -> tuple[list[str], list[bool], Last | None]:
    """Session id and repeat flag per event (in input order), continuing ``last``; and the new last."""
    timeout = timedelta(seconds=settings.SESSION_TIMEOUT_SECONDS)
    sessions, repeats = [""] * len(events), [False] * len(events)
    for i in sorted(range(len(events)), key=lambda i: events[i].occurred_at):
        e = events[i]
        if last and last.session_id and e.occurred_at - last.occurred_at <= timeout:
            session = last.session_id
        else:
            session = uuid.uuid4().hex
        repeats[i] = bool(last and last.name == e.name and last.item_id == e.item_id
                          and timedelta(0) <= e.occurred_at - last.occurred_at <= REPEAT_WINDOW)
        sessions[i] = session
        if last is None or e.occurred_at >= last.occurred_at:
            last = Last(session, e.occurred_at, e.name, e.item_id)
        # An older event (offline replay) joins a session but does not move "last" back in time.
    return sessions, repeats, last


def state_key(visitor_id: str) -> str:
    return cachekeys.visitor_key("lr:last", visitor_id)


_state_key = state_key


def _dump(last: Last) -> str:
    return json.dumps([last.session_id, last.occurred_at.isoformat(), last.name, last.item_id])


def _load(raw) -> Last | None:
    if raw is None:
        return None
    try:
        sid, at, name, item = json.loads(raw)
        return Last(sid, datetime.fromisoformat(at), name, item)
    except (ValueError, TypeError):
        return None


def annotate(visitor_id: str, events: Sequence[CleanEvent], *, rate_check: bool, agent_is_bot: bool,
             received_at: datetime | None = None) -> Verdicts:
    """All preprocessing verdicts for one visitor's batch; call ``remember`` after the insert.

    The bot rate counts the events at ``received_at`` (the server's clock, now by default),
    never at their client times, which the client chooses."""
    from django.utils import timezone

    alias = settings.RATE_LIMIT_CACHE
    arrival = [received_at or timezone.now()] * len(events)
    plan = bots.rate_plan(visitor_id, arrival) if rate_check else None
    cached, totals = None, None
    down = counters.is_down(alias)  # failing open: the log answers the session, the rate goes uncounted
    try:
        pipe = None if down else counters.redis_pipeline(alias)
        if pipe is not None:
            pipe.get(counters.key(alias, _state_key(visitor_id)))
            if plan:
                counters.add_increments(pipe, alias, plan.increments)
            replies = pipe.execute()
            cached = _load(replies[0])
            totals = [int(v) for v in replies[1::2]] if plan else None
        elif not down:
            from django.core.cache import caches

            cached = _load(caches[alias].get(_state_key(visitor_id)))
    except Exception as exc:  # noqa: BLE001 - the cache is an accelerator; the log answers without it
        counters.mark_down(alias, exc)
    if plan and totals is None:
        flags = bots.inhuman(visitor_id, arrival)
    elif plan:
        flags, trip = plan.verdicts(totals)
        if trip:
            counters.incr_many(alias, [(plan.flag_key, 1, plan.flag_ttl)])
    else:
        flags = [False] * len(events)
    last = cached if cached is not None else _last_from_log(visitor_id)
    sessions, repeats, new_last = assign_sessions(events, last)
    return Verdicts(sessions, repeats, [agent_is_bot or f for f in flags],
                    new_last if new_last is not last else None)


def remember(visitor_id: str, verdicts: Verdicts) -> None:
    """Cache the visitor's last event for the next batch (best effort)."""
    if verdicts.new_last is None:
        return
    alias, ttl = settings.RATE_LIMIT_CACHE, int(settings.SESSION_TIMEOUT_SECONDS)
    if counters.is_down(alias):
        return
    try:
        pipe = counters.redis_pipeline(alias)
        if pipe is not None:  # raw value: read back raw by annotate()'s pipeline
            pipe.set(counters.key(alias, _state_key(visitor_id)), _dump(verdicts.new_last), ex=ttl)
            pipe.execute()
        else:
            from django.core.cache import caches

            caches[alias].set(_state_key(visitor_id), _dump(verdicts.new_last), ttl)
    except Exception as exc:  # noqa: BLE001
        counters.mark_down(alias, exc)
