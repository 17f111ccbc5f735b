"""The interest projection: folds new log events into visitor profiles, from a cursor."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

import numpy as np
import orjson
from django.db import connection, transaction

from tracking.models import Event

from .. import engagement
from .. import interest_model as im
from .. import selectors
from ..conf import settings
from ..cycletrace import span
from ..encoders import get_encoder
from ..models import Item, ProjectionCursor, VisitorProfile, VisitorSequenceState
from . import items, projection
from .labels import label_interests
from .sequential import state_from_row
from .vectors import binary_vector_cursor, fetch_binary, fetch_binary_many

CURSOR = "interests"
# Events per projection transaction. Measured: one visitor's event folds in well
# under a millisecond; 500 keeps a catch-up transaction short (< 1 s) after a backlog.
APPLY_BATCH = 500


def load_state(profile: VisitorProfile) -> im.InterestState:
    return im.InterestState(
        long_term=None if profile.long_term is None else np.asarray(profile.long_term, dtype=np.float32),
        short_term=None if profile.short_term is None else np.asarray(profile.short_term, dtype=np.float32),
        interests=_interests(profile.interests, profile.interest_vectors),
        rate_per_hour=profile.rate_per_hour, last_event_at=profile.last_event_at, event_count=profile.event_count,
    )


def _interests(stored, packed) -> list[im.Interest]:
    """A profile row's interests as the interest model's objects: weights and labels from the
    JSON, centroids from ``interest_vectors`` (read-only views of its bytes: the model
    replaces vectors, never writes into them)."""
    if not stored:
        return []
    vectors = unpack_vectors(packed, len(stored))
    return [im.Interest(vec, float(i["weight"]), i.get("label", "")) for i, vec in zip(stored, vectors)]


def pack_vectors(vectors) -> bytes:
    """``VisitorProfile.interest_vectors`` of these centroids: float32 little-endian, row after row."""
    return np.asarray(vectors, dtype="<f4").tobytes() if len(vectors) else b""


def unpack_vectors(packed, count: int) -> np.ndarray:
    """``count`` centroids from ``interest_vectors`` bytes, one float32 row each."""
    return np.frombuffer(packed, dtype="<f4").astype(np.float32, copy=False).reshape(count, -1)


def store_state(profile: VisitorProfile, state: im.InterestState) -> None:
    """The state into the profile's fields. The centroids are stored as computed (float32): a
    read gives back exactly what the fold held."""
    profile.long_term = state.long_term
    profile.short_term = state.short_term
    profile.interests = [{"weight": round(it.weight, 6), "label": it.label} for it in state.interests]
    profile.interest_vectors = pack_vectors([it.vector for it in state.interests])
    profile.rate_per_hour = state.rate_per_hour
    profile.last_event_at = state.last_event_at
    profile.event_count = state.event_count


def _vectors_for(events: list[Event], items: dict[str, np.ndarray] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The events' item embeddings (``items`` when the caller read them: ``item_vectors``)
    and their search queries' embeddings."""
    encoder = get_encoder()
    if items is None:
        items = item_vectors({e.item_id for e in events if e.item_id})[1]
    queries = sorted({str(e.properties.get("query", ""))[:256] for e in events if e.name == "searched"} - {""})
    qvecs = dict(zip(queries, encoder.encode(queries))) if queries else {}
    return items, qvecs


def item_vectors(item_ids: set[str]) -> tuple[set[str], dict[str, np.ndarray]]:
    """Which of these items exist, and the embeddings of those embedded by the current encoder,
    in one round trip (a fold needs both: ``_ensure_items``, then ``fold``)."""
    if not item_ids:
        return set(), {}
    return _item_vectors_from(fetch_binary(*_item_vectors_read(item_ids)))


def _item_vectors_read(item_ids: set[str]) -> tuple[str, list]:
    # pgvector's binary format straight into NumPy: the ORM parsed each embedding's text
    # form in Python (Vector._from_text), 3-5% of the realtime worker under load.
    return (f"SELECT item_id, CASE WHEN embedding_model = %s THEN embedding END "
            f"FROM {Item._meta.db_table} WHERE item_id = ANY(%s)", [get_encoder().name, sorted(item_ids)])


def _item_vectors_from(rows) -> tuple[set[str], dict[str, np.ndarray]]:
    known, items = set(), {}
    for item_id, emb in rows:
        known.add(item_id)
        if emb is not None:
            items[item_id] = emb.to_numpy()
    return known, items


def fold(events: Iterable[Event], profiles: dict[str, VisitorProfile],
         item_vecs: dict[str, np.ndarray] | None = None) -> set[str]:
    """Apply events (in log order) to the given profiles, creating missing ones in memory.
    ``item_vecs``: the events' item embeddings, when the caller read them (``item_vectors``)."""
    events = [e for e in events if not e.is_bot and not e.is_repeat]
    if not events:
        return set()
    tuned = selectors.interest_settings()  # published admin tuning over LIVEREC settings
    weights = tuned["EVENT_WEIGHTS"]
    item_vecs, query_vecs = _vectors_for(events, item_vecs)
    states: dict[str, im.InterestState] = {}
    touched: set[str] = set()
    for ev in events:
        profile = profiles.get(ev.visitor_id)
        if profile is None:
            profile = profiles[ev.visitor_id] = VisitorProfile(visitor_id=ev.visitor_id)
        state = states.get(ev.visitor_id)
        if state is None:
            state = states[ev.visitor_id] = load_state(profile)
        if ev.name == "searched":
            vec = query_vecs.get(str(ev.properties.get("query", ""))[:256])
        else:
            vec = item_vecs.get(ev.item_id)
        weight = engagement.event_weight(ev, weights, bounce=True)
        im.apply(state, vec if weight else None, weight, ev.occurred_at,
                 long_half_life=tuned["LONG_TERM_HALF_LIFE_HOURS"], short_half_life=tuned["SHORT_TERM_HALF_LIFE_HOURS"],
                 search=ev.name == "searched")
        if ev.user_id:
            profile.user_id = ev.user_id
        profile.last_event_id = ev.id
        touched.add(ev.visitor_id)

    label_interests([states[vid] for vid in touched])
    for vid in touched:
        store_state(profiles[vid], states[vid])
    return touched


def _save(profiles: Iterable[VisitorProfile]) -> None:
    new = [p for p in profiles if p.pk is None]
    old = [p for p in profiles if p.pk is not None]
    if new:
        _insert(new)
    if old:
        _update(old)


def _vectors(values) -> list[np.ndarray | None]:
    """Vector column values as float32 arrays, for a ``%b::vector[]`` parameter: pgvector's binary
    dumper sends their bytes. Measured: building the text literals (repr() of every float) for
    the UPDATE was ~1.5% of the realtime worker, and PostgreSQL then parsed them back."""
    return [None if v is None else np.asarray(v, dtype=np.float32) for v in values]


def _insert(profiles: list[VisitorProfile]) -> None:
    """New profiles in one INSERT ... SELECT FROM unnest(), vectors in binary as in ``_update``.

    Every concrete column, prepared as ``bulk_create`` prepares it (``pre_save`` fills
    ``updated_at``), so a column added to the model is written here too; the ids come back
    per visitor (unique) and the instances are marked saved, as ``bulk_create`` leaves them.
    """
    from django.db import models
    from pgvector.django import VectorField

    fields = [f for f in VisitorProfile._meta.concrete_fields if not f.primary_key]
    params, casts = [], []
    for f in fields:
        values = [f.pre_save(p, add=True) for p in profiles]
        if isinstance(f, VectorField):
            params.append(_vectors(values))
            casts.append("%b::vector[]")
        elif isinstance(f, models.BinaryField):
            params.append([bytes(v) for v in values])
            casts.append("%b::bytea[]")
        else:
            params.append([f.get_db_prep_save(v, connection) for v in values])
            casts.append(f"%b::{f.db_type(connection)}[]")
    with binary_vector_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {VisitorProfile._meta.db_table} ({', '.join(f.column for f in fields)}) "
            f"SELECT * FROM unnest({', '.join(casts)}) RETURNING id, visitor_id",
            params,
        )
        ids = {visitor_id: pk for pk, visitor_id in cursor.fetchall()}
    for p in profiles:
        p.pk = ids[p.visitor_id]
        p._state.adding, p._state.db = False, connection.alias


def _update(profiles: list[VisitorProfile]) -> None:
    """One UPDATE ... FROM unnest() for the batch. Measured: Django's bulk_update (a CASE
    per column and row) took 40% of a one-event projection transaction, ~40 ms.

    Every array goes in binary (``%b``), as in ``_insert``: in text, psycopg escapes each
    element with a regex. The interests' centroids are bytes (``pack_vectors``), their
    weights and labels a small JSON from orjson."""
    cols = [[p.pk for p in profiles], [p.user_id for p in profiles], _vectors(p.long_term for p in profiles),
            _vectors(p.short_term for p in profiles), [orjson.dumps(p.interests).decode() for p in profiles],
            [bytes(p.interest_vectors) for p in profiles],
            [p.rate_per_hour for p in profiles], [p.last_event_at for p in profiles],
            [p.event_count for p in profiles], [p.last_event_id for p in profiles]]
    with binary_vector_cursor() as cursor:
        cursor.execute(
            f"UPDATE {VisitorProfile._meta.db_table} AS p SET user_id = u.user_id, long_term = u.lt, "
            "short_term = u.st, interests = u.interests::jsonb, interest_vectors = u.iv, rate_per_hour = u.rate, "
            "last_event_at = u.at, event_count = u.cnt, last_event_id = u.leid, updated_at = now() "
            "FROM unnest(%b::bigint[], %b::text[], %b::vector[], %b::vector[], %b::text[], %b::bytea[], %b::float8[], "
            "%b::timestamptz[], %b::int[], %b::bigint[]) AS u(id, user_id, lt, st, interests, iv, rate, at, cnt, leid) "
            "WHERE p.id = u.id",
            cols,
        )


# The columns the fold reads and ``_update`` writes, in the model's field order (``from_db``
# takes the values in that order); the others stay deferred.
_FOLD_COLUMNS = ("id", "visitor_id", "user_id", "long_term", "short_term", "interests", "interest_vectors",
                 "event_count", "rate_per_hour", "last_event_at", "last_event_id")


def load_profiles(visitor_ids: Iterable[str]) -> dict[str, VisitorProfile]:
    """These visitors' profiles by visitor id, as ``VisitorProfile.objects.filter(...)`` gives
    them for ``fold``, but read in pgvector's binary format: long_term and short_term arrive
    as float32 arrays instead of text the ORM parses float by float (``Vector._from_text``,
    a visible share of the realtime worker under load). Built with ``from_db`` like any
    queryset row; the columns the fold never touches (``summary``) are deferred.
    """
    return _profiles_from(fetch_binary(*_profiles_read(visitor_ids)))


def _profiles_read(visitor_ids: Iterable[str]) -> tuple[str, list]:
    return (f"SELECT {', '.join(_FOLD_COLUMNS)} FROM {VisitorProfile._meta.db_table} WHERE visitor_id = ANY(%b)",
            [sorted(visitor_ids)])


def _profiles_from(rows) -> dict[str, VisitorProfile]:
    profiles = {}
    for pk, visitor_id, user_id, long_term, short_term, *rest in rows:
        profiles[visitor_id] = VisitorProfile.from_db(
            connection.alias, _FOLD_COLUMNS,
            (pk, visitor_id, user_id, None if long_term is None else long_term.to_numpy(),
             None if short_term is None else short_term.to_numpy(), *rest))
    return profiles


def _ensure_items(events: list[Event], known: set[str]) -> bool:
    """Create items known only from events and embed them inline, before the fold; True if
    any was created. ``known``: the events' items that exist (``item_vectors``).

    Inline (not on the batch queue) so the event counts now and a replay, which finds
    the item already embedded, folds exactly the same vectors. A handful per batch at
    most after the first sighting: milliseconds on the realtime worker's loaded encoder.
    """
    rows = [(e.item_id, e.properties) for e in events if e.item_id and not e.is_bot and e.item_id not in known]
    if not rows:
        return False

    new_pks = items.ensure_items_from_events(rows)
    if new_pks:
        items.embed_items(new_pks, index=False)
    return True


def _apply_batch(limit: int, snapshots: dict | None = None) -> tuple[dict[str, tuple[int, datetime]], int]:
    """Fold the next ``limit`` events after the cursor in one transaction. Returns the
    visitors touched, each with the id of its first event folded (the one that waited longest)
    and when the server received its newest one (push latency is measured from it).
    ``snapshots``, when given, gets each touched visitor's state as committed (see
    ``catch_up_in_order``).

    The transaction holds the cursor row lock, so concurrent workers serialise here
    and each event is applied exactly once; a crash rolls back profiles and cursor together.
    """
    with transaction.atomic():
        with span("f:next_batch"):
            cursor, events = projection.next_batch(CURSOR, limit)
        if not events:
            return {}, 0
        item_ids = {e.item_id for e in events if e.item_id}
        with span("f:read"):
            # The events' items and visitors' profiles in one round trip (``fetch_binary_many``).
            reads = [_profiles_read({e.visitor_id for e in events})] + ([_item_vectors_read(item_ids)] if item_ids else [])
            rows = fetch_binary_many(reads)
            profiles = _profiles_from(rows[0])
            known, item_vecs = _item_vectors_from(rows[1]) if item_ids else (set(), {})
        if _ensure_items(events, known):  # new items: read their fresh embeddings too
            known, item_vecs = item_vectors(item_ids)
        with span("f:fold"):
            touched = fold(events, profiles, item_vecs)
        with span("f:save"), projection.pipelined():  # the profiles and the cursor in one round trip
            _save([profiles[v] for v in touched])
            projection.advance(cursor, events[-1])
    if snapshots is not None:
        # After the commit: what a read of the profile would now return (``load_state`` of the
        # stored fields: the interests as rounded for storage), so a ranking from it equals one
        # from a fresh read.
        snapshots.update({v: load_state(profiles[v]) for v in touched})
    first: dict[str, tuple[int, datetime]] = {}
    for e in events:
        if e.visitor_id in touched:
            first[e.visitor_id] = (first[e.visitor_id][0] if e.visitor_id in first else e.id, e.received_at)
    return first, len(events)


def apply_new_events(limit: int = APPLY_BATCH) -> tuple[set[str], bool]:
    """Fold the next events after the cursor. Returns (visitors touched, more pending)."""
    touched, count = _apply_batch(limit)
    return set(touched), count == limit


def catch_up(settle: float = projection.SETTLE_SECONDS) -> set[str]:
    """Fold every pending event; returns the visitors touched (see ``projection.catch_up``)."""
    return set().union(*projection.catch_up(_apply_batch, CURSOR, APPLY_BATCH, settle))


def catch_up_in_order(settle: float = projection.SETTLE_SECONDS, snapshots: dict | None = None
                      ) -> list[tuple[str, datetime]]:
    """``catch_up``; the visitors touched, each with when the server received its newest event,
    in the order their first folded event arrived: the realtime worker refreshes them first
    come, first served, so under load no visitor's push waits behind more than the visitors
    who were waiting before it.

    ``snapshots``, when given, is filled with {visitor: InterestState} of the touched visitors
    as this fold committed them: the realtime worker ranks their pushes from these instead of
    reading the profiles it just wrote (a round trip and its parse per cycle). A later fold
    elsewhere may have moved a profile on since; its own push then carries a higher number.
    """
    first: dict[str, list] = {}
    apply = _apply_batch if snapshots is None else (lambda limit: _apply_batch(limit, snapshots))
    for touched in projection.catch_up(apply, CURSOR, APPLY_BATCH, settle):
        for visitor_id, (event_id, received_at) in touched.items():
            first.setdefault(visitor_id, [event_id, received_at])[1] = received_at
    return [(v, first[v][1]) for v in sorted(first, key=lambda v: first[v][0])]


# Replay reads bigger batches: nobody waits on a push during a rebuild.
REPLAY_BATCH = 5000


def rebuild(progress=None) -> int:
    """Drop the interest projection and replay the whole log; returns events applied."""
    with transaction.atomic():
        projection.lock(CURSOR)  # a fold in flight finishes first
        VisitorProfile.objects.all().delete()
        ProjectionCursor.objects.filter(name=CURSOR).delete()
    total = 0
    while True:
        _, count = _apply_batch(REPLAY_BATCH)
        total += count
        if progress and count:
            progress(count)
        if count < REPLAY_BATCH:
            return total


def refresh_hint(visitor_id: str, now=None) -> dict:
    """Read by the push layer: how eagerly to refresh this visitor (``interest_model.refresh_hint``)."""
    from django.utils import timezone

    row = VisitorProfile.objects.filter(visitor_id=visitor_id).values("rate_per_hour", "last_event_at").first()
    if row is None:
        return im.refresh_hint(0.0, None, now or timezone.now(), base_debounce_ms=settings.PUSH_DEBOUNCE_MS)
    return im.refresh_hint(row["rate_per_hour"], row["last_event_at"], now or timezone.now(),
                           base_debounce_ms=settings.PUSH_DEBOUNCE_MS)


def visitor_state(visitor_id: str) -> im.InterestState | None:
    """The visitor's interest state as the engine reads it (see ``visitor_snapshots``)."""
    return visitor_snapshots([visitor_id]).get(visitor_id, (None, None))[0]


def visitor_snapshots(visitor_ids) -> dict:
    """Each visitor's interest state and stored sequence-model state, as the engine reads them
    per request, in one round trip: {visitor_id: (InterestState, seqmodel.VisitorState | None)}
    (visitors without a profile are absent).

    Read in pgvector's binary format straight into NumPy: the ORM's text parsing of the two
    384-d vectors was 16% of a for-you request's time at 100k items. The sequence state counts
    only while computed from the profile's current fold position (``basis``).
    """

    ids = list(visitor_ids)
    if not ids:
        return {}
    rows = fetch_binary(f"SELECT p.visitor_id, p.long_term, p.short_term, p.interests, p.interest_vectors, "
                        f"p.rate_per_hour, "
                        f"p.last_event_at, p.event_count, s.model_id, s.basis = p.last_event_id, s.state, "
                        f"s.last_item_id, i.title "
                        f"FROM {VisitorProfile._meta.db_table} p "
                        f"LEFT JOIN {VisitorSequenceState._meta.db_table} s ON s.visitor_id = p.visitor_id "
                        f"LEFT JOIN {Item._meta.db_table} i ON i.item_id = s.last_item_id "
                        f"WHERE p.visitor_id = ANY(%s)", [ids])
    out = {}
    for visitor_id, long_term, short_term, interests, packed, rate, last_event_at, count, *sequence in rows:
        state = im.InterestState(
            long_term=None if long_term is None else long_term.to_numpy().astype(np.float32, copy=False),
            short_term=None if short_term is None else short_term.to_numpy().astype(np.float32, copy=False),
            interests=_interests(interests or (), packed),
            rate_per_hour=rate, last_event_at=last_event_at, event_count=count,
        )
        out[visitor_id] = (state, state_from_row(*sequence))
    return out
