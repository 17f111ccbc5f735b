"""Reads of the event log for projections and pages."""
from __future__ import annotations

from django.db import connection

from .models import Event


# A transaction that will never append to the log can say so, before it takes a transaction
# id: ``NO_APPENDS`` (an SQL expression) takes a shared advisory lock held until it ends, and
# ``HORIZON`` leaves such transactions out. Projections and other derived writes declare it
# (``recsys.services.projection.derived_write``): the association fold's upsert held every
# other fold's horizon for its whole write (~50 ms under bench_freshness's load), and an
# event committed meanwhile waited for it. Nobody takes the lock exclusively: it never blocks.
NO_APPENDS_KEY = (1280402803, 1)  # pg_advisory_xact_lock_shared(int4, int4): classid, objid
NO_APPENDS = "pg_advisory_xact_lock_shared(%d, %d)" % NO_APPENDS_KEY

# The stable horizon (xid8): the oldest transaction of the statement's snapshot still running,
# leaving out those that declared ``NO_APPENDS``; the snapshot's xmax when none is left. Every
# event below it is final: a transaction that had not committed at the snapshot either holds
# the horizon back, or never appends, or takes a transaction id at or above the xmax. (A
# declared transaction that ends while this runs drops out of ``pg_locks`` and so counts:
# conservative.) Each transaction holds an exclusive lock on its own id while it runs; a
# waiter's share lock on another's id is not granted, so it names only its own.
HORIZON = (
    "(SELECT coalesce((SELECT min(x) FROM pg_snapshot_xip(s) AS x WHERE xid(x) NOT IN ("
    "  SELECT t.transactionid FROM pg_locks t JOIN pg_locks a ON a.pid = t.pid "
    "  WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted "
    f"   AND a.locktype = 'advisory' AND a.classid = {NO_APPENDS_KEY[0]} AND a.objid = {NO_APPENDS_KEY[1]} "
    "   AND a.objsubid = 2 AND a.granted)), pg_snapshot_xmax(s)) FROM pg_current_snapshot() AS s)")


def stable_horizon() -> int:
    """The stable horizon (``HORIZON``): every event below it is final.

    PostgreSQL leaves the calling transaction's own id out of the snapshot, so projections
    call it after taking their cursor lock: by then a competing projector has committed, and
    events appended during its fold are not held back by it.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {HORIZON}::text::bigint")
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
