"""The catch-up loop both cursor projections (interests, co-occurrence) share."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, TypeVar

from django.db import connection

from tracking import selectors as log
from tracking.models import Event

from ..models import ProjectionCursor

T = TypeVar("T")

# A fold reads only below the stable horizon (the oldest running transaction), so an
# unrelated short transaction that began before an event can hold that event back for
# a moment. Callers that promise "everything committed before I was called" (commands,
# tests, the evaluation runner) wait this long for such a transaction to end.
SETTLE_SECONDS = 5.0


def derived_write() -> None:
    """Within a transaction that writes only derived state, before its first write: commit
    without waiting for the WAL flush, and declare that it never appends to the log
    (``tracking.selectors.NO_APPENDS``), so its transaction id does not hold back the folds'
    stable horizon. Such a transaction must not record events.

    A projection (profiles, associations) moves its cursor in the same transaction as its
    rows, and the serve log is analytics, so a crash that loses the last few such commits
    loses nothing the log cannot rebuild: PostgreSQL drops whole transactions, in order, and
    the fold resumes from the older cursor. The event log itself keeps synchronous commits.
    A synchronous commit waits for the WAL flush (~18 ms on a shared VM's disk) on every fold,
    i.e. on the path of every live push.
    """
    expressions = _derived_write_expressions()
    if expressions:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(expressions)}")


def _derived_write_expressions() -> list[str]:
    """``_DERIVED_WRITE`` when the innermost atomic block began the transaction, else nothing:
    around it a caller's block may hold writes (an event recorded in the same request, say)
    that the two settings would cover. A test case's own wrapping blocks do not count
    (Django's ``durable`` check alike)."""
    from django.db import connection

    outermost = len([b for b in connection.atomic_blocks if not b._from_testcase]) <= 1
    return [_DERIVED_WRITE] if outermost else []


# ``SET LOCAL synchronous_commit TO OFF`` and the no-appends declaration as expressions, so a
# statement can carry them.
_DERIVED_WRITE = f"set_config('synchronous_commit', 'off', true), {log.NO_APPENDS}"


def lock(cursor_name: str) -> ProjectionCursor:
    """Inside the caller's transaction: take the projection's lock and read its cursor.

    A transaction-scoped advisory lock, not ``SELECT ... FOR UPDATE`` on the cursor row: a row
    lock gives the transaction an id at once, and every running transaction with an id holds
    back the stable horizon of all projections (``tracking.selectors.stable_horizon``). Under
    load the association fold held the interest fold's horizon behind it for the whole fold;
    now a projection takes an id only at its first write, at the end of its batch. Lock
    waiters read the cursor after the holder committed (READ COMMITTED: a fresh snapshot).
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_LOCK}", [_lock_key(cursor_name)])
    cursor, _ = ProjectionCursor.objects.get_or_create(name=cursor_name)
    return cursor


_LOCK = "pg_advisory_xact_lock(hashtextextended(%s, 0))"  # the projection's lock (``lock``)


def _lock_key(cursor_name: str) -> str:
    return f"liverec.projection:{cursor_name}"


def next_batch(cursor_name: str, limit: int) -> tuple[ProjectionCursor, list]:
    """Inside the caller's transaction: lock the projection (``lock``) and read up to ``limit``
    events after its cursor, below the stable horizon. The lock serialises concurrent
    projectors, so each event is applied exactly once; the horizon is read after it (see
    ``tracking.selectors.stable_horizon``). The writes that follow are derived ones
    (``derived_write``).

    Two round trips after the BEGIN where ``derived_write`` + ``lock`` + cursor +
    ``stable_horizon`` + events took five: the lock is taken in the statement that turns off
    the WAL-flush wait; then one statement reads the cursor, the horizon and the events after
    them. Its snapshot is taken after the lock was granted (READ COMMITTED),
    as ``lock`` reads the cursor, and the events below the horizon it computes have all
    committed before that snapshot. Each round trip is held inside the lock, which the two
    realtime workers' folds queue on.
    """
    from django.db import connection


    # Not pipelined with the read: psycopg still sends the BEGIN on its own (it syncs to learn
    # the transaction status), and a raw queryset reads the column names before fetching,
    # which a pipeline has yet to return (libpq trace, bench_roundtrips).
    with connection.cursor() as db:
        db.execute(f"SELECT {', '.join(_derived_write_expressions() + [_LOCK])}", [_lock_key(cursor_name)])
    events = list(Event.objects.raw(
        f"SELECT e.*, c.txid AS cursor_txid, c.position AS cursor_position "
        f"FROM (SELECT txid, position, {log.HORIZON} AS horizon "
        f"      FROM {ProjectionCursor._meta.db_table} WHERE name = %s) c "
        f"CROSS JOIN LATERAL (SELECT * FROM {Event._meta.db_table} "
        f"  WHERE (txid, id) > (c.txid::text::xid8, c.position) AND txid < c.horizon "
        f"  ORDER BY txid, id LIMIT %s) e", [cursor_name, limit]))
    if events:
        head = events[0]
        return ProjectionCursor.from_db(connection.alias, ["name", "txid", "position"],
                                        (cursor_name, head.cursor_txid, head.cursor_position)), events
    cursor = ProjectionCursor.objects.filter(name=cursor_name).first()
    if cursor is not None:  # nothing pending (an extra round trip only when there is no work)
        return cursor, []
    # The projection's first run: create its cursor (a write, once), then read from the start.
    cursor, _ = ProjectionCursor.objects.get_or_create(name=cursor_name)
    return cursor, log.events_after(cursor.txid, cursor.position, horizon=log.stable_horizon(), limit=limit)


def advance(cursor: ProjectionCursor, last) -> None:
    """Move the cursor past ``last``, the batch's last event (inside the fold's transaction).

    A plain UPDATE, not ``cursor.save()``: Django reads the UPDATE's row count at once,
    which would end a psycopg pipeline (``pipelined``) before the fold's other writes."""
    from django.db import connection

    cursor.txid, cursor.position = last.txid, last.id
    with connection.cursor() as db:
        db.execute(f"UPDATE {ProjectionCursor._meta.db_table} SET txid = %s, position = %s, updated_at = now() "
                   f"WHERE name = %s", [cursor.txid, cursor.position, cursor.name])


@contextmanager
def pipelined():
    """Send the writes inside in one round trip (psycopg's pipeline mode): statements whose
    results nobody reads are queued and flushed together when the block ends, or earlier
    when a statement's rows are fetched. Use inside the fold's transaction, around its last
    writes: under load every round trip waited for PostgreSQL to be scheduled (a ``SELECT 1``
    took p90 1.3 ms), inside the lock the other realtime worker's fold queues on."""
    from django.db import connection

    connection.ensure_connection()
    # A failed write surfaces when the block flushes: wrapped, as Django wraps its own errors.
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def catch_up(apply_batch: Callable[[int], tuple[T, int]], cursor_name: str, batch: int,
             settle: float = SETTLE_SECONDS) -> list[T]:
    """Run ``apply_batch`` until the cursor has passed every event committed before the call.

    ``apply_batch(limit)`` returns (its result, events read). With ``settle=0`` (the
    realtime worker) it stops at the horizon at once: the transaction holding it back
    enqueues its own task when it commits.
    """
    target = log.last_txid() if settle else None
    deadline = time.monotonic() + settle
    results = []
    while True:
        result, count = apply_batch(batch)
        results.append(result)
        if count == batch:
            continue
        if target is None or time.monotonic() > deadline or not _pending(cursor_name, target):
            return results
        time.sleep(0.02)


def _pending(cursor_name: str, target: int) -> bool:
    cursor = ProjectionCursor.objects.filter(name=cursor_name).values_list("txid", "position").first() or (0, 0)
    return log.pending_through(*cursor, through=target)
