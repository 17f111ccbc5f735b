"""Reads of the event log for projections and pages."""
from __future__ import annotations

from django.db import connection

from .models import Event


def stable_horizon() -> int:
    """The oldest transaction id still running: every event below it is final.

    PostgreSQL leaves the calling transaction's own id out of the snapshot's xmin, so
    projections call it after taking their cursor lock: by then a competing projector
    has committed, and events appended during its fold are not held back by it.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return cursor.fetchone()[0]


def last_txid() -> int | None:
    """The newest transaction id in the committed log (an index lookup)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(txid)::text::bigint FROM {Event._meta.db_table}")
        return cursor.fetchone()[0]


def pending_through(txid: int, event_id: int, *, through: int) -> bool:
    """Whether committed events after the (txid, id) cursor have a txid at most ``through``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {Event._meta.db_table} WHERE (txid, id) > (%s::text::xid8, %s) "
            "AND txid <= %s::text::xid8)",
            [str(txid), event_id, str(through)],
        )
        return cursor.fetchone()[0]


def events_after(txid: int, event_id: int, *, horizon: int, limit: int) -> list[Event]:
    """Events after the (txid, id) cursor and below ``horizon``, in log order.

    Log order is (txid, id): the order transactions appended them. Replays read the
    same order, so a rebuilt projection equals the incrementally maintained one.
    """
    return list(
        Event.objects.raw(
            f"SELECT * FROM {Event._meta.db_table} WHERE (txid, id) > (%s::text::xid8, %s) "
            "AND txid < %s::text::xid8 ORDER BY txid, id LIMIT %s",
            [str(txid), event_id, str(horizon), limit],
        )
    )


def visitor_events(visitor_id: str, limit: int = 200) -> list[Event]:
    return list(Event.objects.filter(visitor_id=visitor_id).order_by("-occurred_at", "-id")[:limit])
