"""The catch-up loop both cursor projections (interests, co-occurrence) share."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from tracking import selectors as log

from ..models import ProjectionCursor

T = TypeVar("T")

# A fold reads only below the stable horizon (the oldest running transaction), so an
# unrelated short transaction that began before an event can hold that event back for
# a moment. Callers that promise "everything committed before I was called" (commands,
# tests, the evaluation runner) wait this long for such a transaction to end.
SETTLE_SECONDS = 5.0


def derived_write() -> None:
    """Within a transaction that writes only derived state: commit without waiting for the WAL flush.

    A projection (profiles, associations) moves its cursor in the same transaction as its
    rows, and the serve log is analytics, so a crash that loses the last few such commits
    loses nothing the log cannot rebuild: PostgreSQL drops whole transactions, in order, and
    the fold resumes from the older cursor. The event log itself keeps synchronous commits.
    Measured: a commit waited ~18 ms for the flush on this machine's disk, on every fold,
    i.e. on the path of every live push.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_DERIVED_WRITE}")


# ``SET LOCAL synchronous_commit TO OFF`` as an expression, so a statement can carry it.
_DERIVED_WRITE = "set_config('synchronous_commit', 'off', true)"


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

    Two round trips before the events where ``derived_write`` + ``lock`` + ``stable_horizon``
    took four: the lock is taken in the statement that turns off the WAL-flush wait, and the
    cursor is read with the horizon, in one statement whose snapshot is taken after the lock
    was granted (READ COMMITTED), as ``lock`` reads it. Each round trip is held inside the lock,
    which the two realtime workers' folds queue on.
    """
    from django.db import connection

    with connection.cursor() as db:
        db.execute(f"SELECT {_DERIVED_WRITE}, {_LOCK}", [_lock_key(cursor_name)])
        db.execute(f"SELECT txid, position, pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                   f"FROM {ProjectionCursor._meta.db_table} WHERE name = %s", [cursor_name])
        row = db.fetchone()
    if row is None:  # the projection's first run: create its cursor (a write, once)
        cursor, _ = ProjectionCursor.objects.get_or_create(name=cursor_name)
        horizon = log.stable_horizon()
    else:
        cursor = ProjectionCursor.from_db(connection.alias, ["name", "txid", "position"], (cursor_name, row[0], row[1]))
        horizon = row[2]
    return cursor, log.events_after(cursor.txid, cursor.position, horizon=horizon, limit=limit)


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
