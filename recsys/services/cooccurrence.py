"""The item-item association projection: folds new log events into ItemAssociation rows.

Same discipline as the interest projection (``services.interests``): its own cursor, the log
read in (txid, id) order below the stable horizon, cursor and rows written in one transaction.
A pair is formed between an engagement and the same visitor's distinct earlier items within a
window (``LIVEREC["COOCCURRENCE"]``); the window before a batch is read back from the log, so
any batching (incremental 500, replay 5000) produces the same rows.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Iterable

from django.db import transaction

from tracking.models import Event

from .. import association_model as am
from .. import engagement, neighbours
from ..conf import settings
from . import coalesce, dispatch, projection
from ..models import ItemAssociation, ItemPopularity, ProjectionCursor
from .vectors import binary_vector_cursor  # a server-side-binding cursor: reads and writes in binary

logger = logging.getLogger(__name__)

CURSOR = "cooccurrence"
# Events per projection transaction. Measured on the demo log: 500 events fold and upsert
# in ~40 ms; its writes hold back the stable horizon of the interest fold meanwhile (see
# ``projection.lock``), so batches stay short even on the batch worker.
APPLY_BATCH = 500
# Replay reads bigger batches: nobody waits on a push during a rebuild.
REPLAY_BATCH = 5000


def window_sql() -> str:
    """Each visitor's last events before the cursor, for ``_windows_before``: parameters
    (visitors, cursor txid, cursor position, window start, positive event names, how many).

    Only the columns a window needs, as plain values in binary (a rating only for ``rated``,
    as JSON that psycopg decodes): building full Event instances (Event.objects.raw, its
    converters, every properties JSON and three timestamps parsed from text) was about half
    of this fold's time in the realtime worker under load. Each visitor's last ``keep``
    events before the cursor are a backward scan of the (visitor, txid, id) index: a window
    function over all their events in the window hours read a visitor's whole day (24 ms
    against 1.9 ms for 50 visitors with ~600 events each, the freshness bench's load).

    The window's start is compared as ``occurred_at + 0 s`` so that no index on occurred_at
    can serve it: events newer than the table's statistics are estimated at one row, and
    PostgreSQL then scanned the log-wide time index, every event of the window hours for
    each visitor (207-243 ms against 4.6 ms for 50 visitors, same rows, after one freshness
    bench load; this read was then the costliest statement of the whole database).
    """
    return (
        f"SELECT w.visitor_id, w.item_id, w.name, w.rating, w.occurred_at "
        f"FROM unnest(%b::text[]) AS q(v) CROSS JOIN LATERAL ("
        f"  SELECT visitor_id, item_id, name, CASE WHEN name = 'rated' THEN properties -> 'value' END AS rating, "
        f"  occurred_at, txid, id FROM {Event._meta.db_table} WHERE visitor_id = q.v "
        f"  AND (txid, id) <= (%b::text::xid8, %b::bigint) AND occurred_at + interval '0 seconds' >= %b "
        f"  AND item_id <> '' "
        f"  AND NOT is_bot AND NOT is_repeat AND name = ANY(%b) ORDER BY txid DESC, id DESC LIMIT %b::bigint) w "
        f"ORDER BY w.txid, w.id"
    )


def _windows_before(events: list[Event], cursor: ProjectionCursor, conf: dict) -> dict[str, am.Window]:
    """Each batch visitor's window as it stood at the cursor, read back from the applied log."""
    visitors = sorted({e.visitor_id for e in events})
    since = min(e.occurred_at for e in events) - timedelta(hours=float(conf["WINDOW_HOURS"]))
    keep = int(conf["WINDOW_ITEMS"]) * 3
    positive = [name for name, w in settings.EVENT_WEIGHTS.items() if w > 0]
    windows = {v: am.Window(int(conf["WINDOW_ITEMS"]), float(conf["WINDOW_HOURS"])) for v in visitors}
    if cursor.position == 0:
        return windows
    with binary_vector_cursor() as db:
        db.execute(window_sql(), [visitors, str(cursor.txid), cursor.position, since, positive, keep], binary=True)
        rows = db.fetchall()
    for visitor_id, item_id, name, rating, occurred_at in rows:
        # As ``engagement.engages``: the query already left out bots, repeats and events without an item.
        weight = engagement.weight(name, {"value": rating})
        if weight > 0:
            windows[visitor_id].push(am.Engagement(item_id, weight, occurred_at, name))
    return windows


def fold(events: Iterable[Event], windows: dict[str, am.Window], conf: dict) -> dict[tuple[str, str], tuple[float, object]]:
    """Pair deltas of the events (in log order), merged per pair as (log_key, latest time)."""
    half_life = float(conf["HALF_LIFE_HOURS"])
    backward = float(conf["BACKWARD"])
    merged: dict[tuple[str, str], tuple[float, object]] = {}
    for ev in events:
        if not engagement.engages(ev):
            continue
        window = windows.setdefault(ev.visitor_id, am.Window(int(conf["WINDOW_ITEMS"]), float(conf["WINDOW_HOURS"])))
        e = am.Engagement(ev.item_id, engagement.event_weight(ev), ev.occurred_at, ev.name)
        for a, b, w in am.pair_deltas(window, e, backward=backward):
            key = am.log_key(w, e.at, half_life)
            prev = merged.get((a, b))
            merged[(a, b)] = (key, e.at) if prev is None else (am.log_add(prev[0], key), max(prev[1], e.at))
        window.push(e)
    return merged


_MERGED_KEY = ("greatest(t.log_key, EXCLUDED.log_key) + CASE WHEN least(t.log_key, EXCLUDED.log_key) - "
               "greatest(t.log_key, EXCLUDED.log_key) < -700 THEN 0 ELSE ln(1 + exp(least(t.log_key, EXCLUDED.log_key) "
               "- greatest(t.log_key, EXCLUDED.log_key))) END")
# One write per pair: log_key is log-sum-exp'd; ``weight`` (decayed to ``updated``, for people
# reading the table; the engine ranks by log_key) follows from it. Measured: a second UPDATE
# for ``weight`` doubled the projection's cost (every row written twice).
_UPSERT = f"""
INSERT INTO {{table}} AS t (item_a, item_b, log_key, updated, weight)
SELECT a, b, k, u, exp(least(700, k - extract(epoch FROM (u - %(epoch)b)) / 3600.0 * %(rate)b))
FROM unnest(%(a)b::text[], %(b)b::text[], %(k)b::float8[], %(u)b::timestamptz[]) AS x(a, b, k, u)
ON CONFLICT (item_a, item_b) DO UPDATE SET
  log_key = {_MERGED_KEY},
  updated = greatest(t.updated, EXCLUDED.updated),
  weight = exp(least(700, {_MERGED_KEY}
                - extract(epoch FROM (greatest(t.updated, EXCLUDED.updated) - %(epoch)b)) / 3600.0 * %(rate)b))
"""


def _write(merged: dict[tuple[str, str], tuple[float, object]], half_life: float) -> None:
    if not merged:
        return
    pairs = sorted(merged)  # a fixed order: concurrent writers never deadlock on row locks
    # The rate as the exact decimal of its repr(), a numeric as the literal that client-side
    # binding wrote was: the weight is then computed exactly as before, to the last bit.
    params = {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs], "k": [merged[p][0] for p in pairs],
              "u": [merged[p][1] for p in pairs], "epoch": am.EPOCH, "rate": Decimal(repr(am.LN2 / half_life))}
    table = ItemAssociation._meta.db_table
    with binary_vector_cursor() as cursor:
        cursor.execute(_UPSERT.format(table=table), params)


def popularity_fold(events: Iterable[Event], half_life: float) -> dict[str, tuple[float, object]]:
    """Per item, the forward-decay key of its engagements in these events (and the latest time).

    What counts is what the trending aggregate over the log (``strategies.trending._scan``)
    counts: each non-bot event on an item, weighted by its event type.
    """
    weights = settings.EVENT_WEIGHTS
    merged: dict[str, tuple[float, object]] = {}
    for ev in events:
        if not ev.item_id or ev.is_bot:
            continue
        w = float(weights.get(ev.name, 0.0))
        if w <= 0:
            continue
        key = am.log_key(w, ev.occurred_at, half_life)
        prev = merged.get(ev.item_id)
        merged[ev.item_id] = (key, ev.occurred_at) if prev is None else (am.log_add(prev[0], key), max(prev[1], ev.occurred_at))
    return merged


_POPULARITY_UPSERT = f"""
INSERT INTO {{table}} AS t (item_id, log_key, updated)
SELECT i, k, u FROM unnest(%(i)b::text[], %(k)b::float8[], %(u)b::timestamptz[]) AS x(i, k, u)
ON CONFLICT (item_id) DO UPDATE SET log_key = {_MERGED_KEY}, updated = greatest(t.updated, EXCLUDED.updated)
"""


def _write_popularity(merged: dict[str, tuple[float, object]]) -> None:
    if not merged:
        return
    items = sorted(merged)  # a fixed order, as for the pairs
    params = {"i": items, "k": [merged[i][0] for i in items], "u": [merged[i][1] for i in items]}
    with binary_vector_cursor() as cursor:
        cursor.execute(_POPULARITY_UPSERT.format(table=ItemPopularity._meta.db_table), params)


def _apply_batch(limit: int) -> int:
    conf = settings.COOCCURRENCE
    with transaction.atomic():
        cursor, events = projection.next_batch(CURSOR, limit)
        if not events:
            return 0
        windows = _windows_before([e for e in events if engagement.engages(e)] or events, cursor, conf)
        pairs = fold(events, windows, conf)
        popularity = popularity_fold(events, float(settings.TRENDING["HALF_LIFE_HOURS"]))
        with projection.pipelined():  # the pairs, the counts and the cursor in one round trip
            _write(pairs, float(conf["HALF_LIFE_HOURS"]))
            _write_popularity(popularity)
            projection.advance(cursor, events[-1])
    neighbours.forget_all()  # this process's rankings see the new pairs at once
    return len(events)


def catch_up(settle: float = projection.SETTLE_SECONDS) -> int:
    """Apply every pending event; returns how many were read (see ``projection.catch_up``)."""
    return sum(projection.catch_up(lambda limit: (_apply_batch(limit),) * 2, CURSOR, APPLY_BATCH, settle))


# Coalesced (``services.coalesce``): while one fold task waits in the queue, asking for
# another adds nothing (and the beat's catch-up folds whatever a lost task left).
FOLD_QUEUED_FLAG = "liverec:fold-associations:queued"
FOLD_QUEUED_TTL_SECONDS = 30


def request_fold() -> None:
    """Ask the batch worker to fold what is pending (``tasks.fold_associations``), at most one
    fold per ``ASSOCIATION_FOLD_INTERVAL_MS``: the task is sent with that delay and the flag
    stays claimed until it starts, so the events of every cycle meanwhile wait for it. Never
    raises."""
    if not coalesce.claim(FOLD_QUEUED_FLAG, FOLD_QUEUED_TTL_SECONDS):
        return
    delay = float(settings.ASSOCIATION_FOLD_INTERVAL_MS) / 1000.0
    try:
        dispatch.task("fold_associations").apply_async(retry=False, countdown=delay if delay > 0 else None)
    except Exception as exc:  # broker down: the events wait in the log for the next request
        fold_started()
        logger.warning("recsys: could not enqueue the association fold: %s", exc)


def fold_started() -> None:
    """Called by the fold task before it reads the log."""
    coalesce.release(FOLD_QUEUED_FLAG)


def rebuild(progress=None) -> int:
    """Drop the association and popularity projections and replay the whole log; returns events read."""
    with transaction.atomic():
        projection.lock(CURSOR)  # a fold in flight finishes first
        ItemAssociation.objects.all().delete()
        ItemPopularity.objects.all().delete()
        ProjectionCursor.objects.filter(name=CURSOR).delete()
    neighbours.forget_all()
    total = 0
    while True:
        count = _apply_batch(REPLAY_BATCH)
        total += count
        if progress and count:
            progress(count)
        if count < REPLAY_BATCH:
            return total


def prune(min_weight: float = 1e-3) -> int:
    """Delete pairs whose weight, decayed to the newest observation in the table, fell below
    ``min_weight`` (a pair seen once as two views weighs 1). Event time, not the wall clock,
    so an imported history is not wiped. Returns rows deleted. Replay rebuilds them all."""
    import math

    half_life = float(settings.COOCCURRENCE["HALF_LIFE_HOURS"])
    newest = ItemAssociation.objects.order_by("-updated").values_list("updated", flat=True).first()
    if newest is None:
        return 0
    floor = am.log_key(1.0, newest, half_life) + math.log(min_weight)
    deleted, _ = ItemAssociation.objects.filter(log_key__lt=floor).delete()
    neighbours.forget_all()
    return deleted
