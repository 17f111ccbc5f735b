"""Writes to the event log. The ingest view, the CSV import and host code all call this."""
from __future__ import annotations

import json
import uuid as uuid_mod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from django.db import connection, transaction
from django.utils import timezone

from . import hooks
from .conf import settings
from .models import SCHEMA_VERSION, Event
from .validation import CleanEvent, ValidationError, clean_event, clean_id

_COLUMNS = ("uuid", "name", "visitor_id", "user_id", "item_id", "session_id", "properties",
            "client_time", "occurred_at", "received_at", "schema_version", "source", "is_bot", "is_repeat")
# Repeats of the same (name, item) within this window are flagged, not dropped.
REPEAT_WINDOW = timedelta(seconds=2)


@dataclass
class Outcome:
    id: str
    status: str  # "accepted" | "duplicate" | "rejected"
    reason: str = ""


def _skew(sent_at: Any, now: datetime) -> timedelta:
    """Offset to add to client times: server time minus the client's clock at send."""
    if sent_at is None:
        return timedelta(0)
    from .validation import parse_time

    try:
        offset = now - parse_time(sent_at)
    except ValidationError:
        return timedelta(0)
    # Network delay is not skew; only correct clocks that are clearly off. A clock off by more
    # than the allowed skew is not corrected (events' own ts are judged as sent); "correcting"
    # by centuries overflowed the datetime (found by the fuzzer).
    if abs(offset) > timedelta(seconds=settings.MAX_CLOCK_SKEW_SECONDS):
        return timedelta(0)
    return offset if abs(offset) > timedelta(seconds=2) else timedelta(0)


def _last_events(visitor_ids: Iterable[str]) -> dict[str, Event]:
    ids = list(set(visitor_ids))
    if not ids:
        return {}
    rows = (Event.objects.filter(visitor_id__in=ids).order_by("visitor_id", "-occurred_at", "-id")
            .distinct("visitor_id").only("visitor_id", "session_id", "occurred_at", "name", "item_id"))
    return {e.visitor_id: e for e in rows}


def _assign_sessions(events: list[CleanEvent], received_at: datetime) -> list[tuple[str, bool]]:
    """Session id and repeat flag per event, continuing each visitor's last session."""
    timeout = timedelta(seconds=settings.SESSION_TIMEOUT_SECONDS)
    last = {vid: (e.session_id, e.occurred_at, e.name, e.item_id) for vid, e in _last_events(ev.visitor_id for ev in events).items()}
    out = []
    for ev in sorted(range(len(events)), key=lambda i: events[i].occurred_at):
        e = events[ev]
        prev = last.get(e.visitor_id)
        if prev and prev[0] and e.occurred_at - prev[1] <= timeout:
            session = prev[0]
        else:
            session = uuid_mod.uuid4().hex
        repeat = bool(prev and prev[2] == e.name and prev[3] == e.item_id
                      and timedelta(0) <= e.occurred_at - prev[1] <= REPEAT_WINDOW)
        last[e.visitor_id] = (session, e.occurred_at, e.name, e.item_id)
        out.append((ev, session, repeat))
    out.sort()
    return [(s, r) for _, s, r in out]


def _insert(events: Sequence[CleanEvent], *, received_at: datetime, source: str, is_bot: bool) -> dict[str, int]:
    """INSERT ... ON CONFLICT (uuid) DO NOTHING; returns {uuid: id} of the rows inserted."""
    if not events:
        return {}
    sessions = _assign_sessions(list(events), received_at)
    rows, params = [], []
    placeholders = "(" + ",".join(["%s"] * len(_COLUMNS)) + ")"
    for ev, (session, repeat) in zip(events, sessions):
        rows.append(placeholders)
        params.extend([ev.uuid, ev.name, ev.visitor_id, ev.user_id, ev.item_id, session,
                       json.dumps(ev.properties, ensure_ascii=False, default=str), ev.client_time,
                       ev.occurred_at, received_at, SCHEMA_VERSION, source, is_bot, repeat])
    sql = (f"INSERT INTO {Event._meta.db_table} ({','.join(_COLUMNS)}) VALUES {','.join(rows)} "
           f"ON CONFLICT (uuid) DO NOTHING RETURNING uuid, id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(u): i for u, i in cursor.fetchall()}


def append_events(raw_events: Sequence[Any], *, visitor_id: str, user_id: str = "", sent_at: Any = None,
                  source: str = Event.Source.BROWSER, is_bot: bool = False) -> list[Outcome]:
    """Validate and append a batch; valid events are stored even when others are rejected.

    Returns one outcome per input event, in order. Subscribers are told after commit.
    """
    now = timezone.now()
    visitor_id = clean_id(visitor_id, "visitor_id", 64)
    skew = _skew(sent_at, now)
    outcomes: list[Outcome] = []
    valid: list[CleanEvent] = []
    seen: set[str] = set()
    for raw in raw_events:
        raw_id = str(raw.get("id", "")) if isinstance(raw, dict) else ""
        try:
            ev = clean_event(raw, visitor_id=visitor_id, user_id=user_id, now=now)
        except ValidationError as exc:
            outcomes.append(Outcome(raw_id, "rejected", exc.reason))
            continue
        key = str(ev.uuid)
        if key in seen:
            outcomes.append(Outcome(key, "duplicate"))
            continue
        seen.add(key)
        ev.occurred_at = (ev.client_time + skew) if ev.client_time else now
        if ev.occurred_at > now:
            ev.occurred_at = now
        valid.append(ev)
        outcomes.append(Outcome(key, "pending"))
    with transaction.atomic():
        inserted = _insert(valid, received_at=now, source=source, is_bot=is_bot)
        if inserted:
            ids = sorted(inserted.values())
            transaction.on_commit(lambda: hooks.publish_appended(ids))
    for out in outcomes:
        if out.status == "pending":
            out.status = "accepted" if out.id in inserted else "duplicate"
    return outcomes


def record_event(name: str, *, visitor_id: str, user_id: str = "", item_id: str = "",
                 properties: dict[str, Any] | None = None, occurred_at: datetime | None = None,
                 event_id: uuid_mod.UUID | None = None) -> Outcome:
    """Server-side recording of an event the server knows (an order, a login).

    Raises ValidationError when the event is invalid, so server code fails loudly.
    """
    raw = {"id": str(event_id or uuid_mod.uuid4()), "name": name, "item_id": item_id or None,
           "props": properties or {}, "ts": (occurred_at or timezone.now()).isoformat()}
    (outcome,) = append_events([raw], visitor_id=visitor_id, user_id=user_id, source=Event.Source.SERVER)
    if outcome.status == "rejected":
        raise ValidationError(outcome.reason)
    return outcome
