"""Writes to the event log. The ingest view, the CSV import and host code all call this."""
from __future__ import annotations

import json
import uuid as uuid_mod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from . import bots, hooks, preprocess
from .conf import settings
from .models import SCHEMA_VERSION, Event, EventKey
from .validation import CleanEvent, ValidationError, clean_event, clean_id, parse_time

_COLUMNS = ("uuid", "name", "visitor_id", "user_id", "item_id", "session_id", "properties",
            "client_time", "occurred_at", "received_at", "schema_version", "source", "is_bot", "is_repeat")
REPEAT_WINDOW = preprocess.REPEAT_WINDOW  # kept importable from here
_TYPES = ("uuid", "text", "text", "text", "text", "text", "jsonb", "timestamptz", "timestamptz", "timestamptz",
          "smallint", "text", "boolean", "boolean")
# The whole batch travels as one JSON document unpacked by json_to_recordset(): the statement
# text is the same for every batch (prepared once per connection) and Python does one C-speed
# json.dumps. Measured on bench_ingest: 14 x 20 interpolated placeholders, and then 14
# arrays, cost 4-5 ms of CPU per request in psycopg's quoting; this costs ~0.2 ms.
# Exactly-once by client event id: the ids go into EventKey first (its primary key spans every
# partition of the log); only the rows whose id was new become events, in the same statement.
_INSERT_SQL = (
    f"WITH r AS (SELECT {','.join(_COLUMNS)} FROM json_to_recordset(%s::json) "
    f"AS r({','.join(f'{c} {t}' for c, t in zip(_COLUMNS, _TYPES))})), "
    f"k AS (INSERT INTO {EventKey._meta.db_table} (uuid, received_at) SELECT uuid, received_at FROM r "
    "ON CONFLICT (uuid) DO NOTHING RETURNING uuid) "
    f"INSERT INTO {Event._meta.db_table} ({','.join(_COLUMNS)}) "
    f"SELECT {','.join('r.' + c for c in _COLUMNS)} FROM r JOIN k USING (uuid) RETURNING uuid, id"
)


@dataclass
class Outcome:
    id: str
    status: str  # "accepted" | "duplicate" | "rejected"
    reason: str = ""


def _skew(sent_at: Any, now: datetime) -> timedelta:
    """Offset to add to client times: server time minus the client's clock at send."""
    if sent_at is None:
        return timedelta(0)

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


def _insert(events: Sequence[CleanEvent], verdicts: preprocess.Verdicts, *, received_at: datetime,
            source: str) -> dict[str, int]:
    """Append the events whose ids are new (``_INSERT_SQL``); returns {uuid: id} of the rows inserted."""
    if not events:
        return {}
    received = received_at.isoformat()
    rows = [
        {"uuid": str(ev.uuid), "name": ev.name, "visitor_id": ev.visitor_id, "user_id": ev.user_id,
         "item_id": ev.item_id, "session_id": session, "properties": ev.properties,
         "client_time": ev.client_time.isoformat() if ev.client_time else None,
         "occurred_at": ev.occurred_at.isoformat(), "received_at": received, "schema_version": SCHEMA_VERSION,
         "source": str(source), "is_bot": bot, "is_repeat": repeat}
        for ev, session, repeat, bot in zip(events, verdicts.session_ids, verdicts.repeats, verdicts.bots)
    ]
    document = json.dumps(rows, ensure_ascii=False, default=str)
    connection.ensure_connection()
    # A plain psycopg cursor, not Django's client-side-binding one, so psycopg prepares the
    # constant statement after a few runs and PostgreSQL stops re-planning it. It runs on
    # Django's connection: autocommit and the caller's atomic blocks behave as for any query.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_SQL, [document])
        return {str(u): i for u, i in cursor.fetchall()}


def append_events(raw_events: Sequence[Any], *, visitor_id: str, user_id: str = "", sent_at: Any = None,
                  source: str = Event.Source.BROWSER, is_bot: bool = False,
                  user_agent: str = "", event_user_ids: bool = True) -> list[Outcome]:
    """Validate and append a batch; valid events are stored even when others are rejected.

    Returns one outcome per input event, in order. Subscribers are told after commit.
    Bot verdicts (``is_bot`` on the row, never a rejection): the caller's ``is_bot``, a known
    bot ``user_agent``, or, for browser events, an inhuman rate of this visitor's events.
    ``event_user_ids``: whether an event may carry its own ``user_id`` (server code, imports);
    the ingest view passes False for browsers, whose user is the signed-in one (``user_id``).
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
            ev = clean_event(raw, visitor_id=visitor_id, user_id=user_id, now=now, event_user_ids=event_user_ids)
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
    inserted: dict[str, int] = {}
    if valid:
        verdicts = preprocess.annotate(visitor_id, valid, rate_check=source == Event.Source.BROWSER,
                                       agent_is_bot=is_bot or bots.is_bot_agent(user_agent), received_at=now)
        # One statement, so no explicit transaction: in autocommit it commits in the same round
        # trip (one less than BEGIN..COMMIT, measured on bench_ingest); inside a caller's atomic
        # block it joins it, and on_commit waits for that block.
        inserted = _insert(valid, verdicts, received_at=now, source=source)
        if inserted:
            ids = sorted(inserted.values())
            transaction.on_commit(lambda: hooks.publish_appended(ids))
        # After the hooks: in autocommit they have run (the realtime worker is told), so this
        # cache write is not one more round trip between the commit and the push.
        preprocess.remember(visitor_id, verdicts)
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
