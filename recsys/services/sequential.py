"""The sequential model's data and life cycle: sequences from the log, training, versions.

The batch task ``recsys.tasks.train_sequential`` calls ``train_and_store`` (on the clock), and
``recsys.tasks.retrain_sequential_if_due`` calls ``retrain_if_due`` (by event volume: a first
training, then warm starts, ``warm_start_and_store``); the strategy
``sequential/next-item`` calls ``current_model`` per request and ranks from the visitor's state
that the fold stored (``update_states``), or from ``visitor_sequence_titled`` when it has none.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from django.db import connection, transaction
from django.db.models import Max

from tracking.models import Event

from .. import seqmodel
from ..conf import settings
from ..cycletrace import span
from ..encoders import get_encoder
from ..models import Item, TrainedModel, VisitorProfile, VisitorSequenceState
from .vectors import binary_vector_cursor, fetch_binary

MODEL_NAME = "sequential/next-item"
# Older versions are pruned; a few are kept to roll back or compare.
KEEP_VERSIONS = 3


# An event that puts its item in a visitor's sequence (with ``_item_event_names()`` for %s).
_ENGAGED = "name = ANY(%s) AND NOT is_bot AND NOT is_repeat AND item_id <> ''"


def _item_event_names() -> list[str]:
    """Events that say "this visitor engaged with this item" (positive weight, item-bearing)."""
    return sorted(n for n, w in settings.EVENT_WEIGHTS.items() if w > 0 and n != "searched")


def _engaged():
    return Event.objects.filter(name__in=_item_event_names(), is_bot=False, is_repeat=False).exclude(item_id="")


def sequences_from_log(visitors: list[str] | None = None) -> dict[str, list[str]]:
    """Every visitor's engaged items (or only these ``visitors``'), oldest first (ties in log
    order), from the event log."""
    seqs: dict[str, list[str]] = defaultdict(list)
    qs = _engaged()
    if visitors is not None:
        qs = qs.filter(visitor_id__in=visitors)
    qs = qs.order_by("occurred_at", "id").values_list("visitor_id", "item_id")
    for visitor_id, item_id in qs.iterator(chunk_size=20000):
        seqs[visitor_id].append(item_id)
    return seqs


def visitor_sequence_titled(visitor_id: str, limit: int) -> tuple[list[str], dict[str, str]]:
    """The visitor's last ``limit`` engaged items, oldest first, and their titles (for reasons),
    in one round trip."""
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.item_id, i.title FROM (SELECT item_id, occurred_at, id FROM {table} WHERE visitor_id = %s "
            f"AND {_ENGAGED} ORDER BY occurred_at DESC, id DESC LIMIT %s) e "
            f"LEFT JOIN {Item._meta.db_table} i ON i.item_id = e.item_id ORDER BY e.occurred_at, e.id",
            [visitor_id, _item_event_names(), limit])
        rows = cursor.fetchall()
    return [r[0] for r in rows], {r[0]: r[1] for r in rows if r[1]}


def _catalogue_text() -> tuple[list[str], np.ndarray | None]:
    """All catalogue items and their text embeddings (zeros where an item has none yet).

    Read in pgvector's binary format, in chunks: parsing the text form cost ~0.3 ms per
    384-d vector, half a minute at 100,000 items.
    """
    encoder = get_encoder()
    ids: list[str] = []
    chunks: list[np.ndarray] = []
    with binary_vector_cursor() as cursor:
        cursor.execute(f"SELECT item_id, CASE WHEN embedding_model = %s THEN embedding END "
                       f"FROM {Item._meta.db_table} ORDER BY id", [encoder.name], binary=True)
        while rows := cursor.fetchmany(10_000):
            chunk = np.zeros((len(rows), encoder.dim), dtype=np.float32)
            for n, (item_id, emb) in enumerate(rows):
                ids.append(item_id)
                if emb is not None and emb.dimensions() == encoder.dim:
                    chunk[n] = emb.to_numpy()
            chunks.append(chunk)
    if not ids:
        return ids, None
    return ids, np.vstack(chunks)


def _insert_version(version: int, blob: bytes, metrics: dict) -> TrainedModel:
    """Insert a model version with its blob sent in binary: Django sends bytea as a hex literal,
    twice the blob's size, which fails past 512 MB (a 1M-item catalogue's tables)."""
    from psycopg.types.json import Jsonb


    with binary_vector_cursor() as cursor:
        cursor.execute(f"INSERT INTO {TrainedModel._meta.db_table} (name, version, blob, metrics, created_at) "
                       f"VALUES (%s, %s, %b, %s, now()) RETURNING id", [MODEL_NAME, version, blob, Jsonb(metrics)])
        pk = cursor.fetchone()[0]
    return TrainedModel.objects.defer("blob").get(pk=pk)


def _read_blob(pk: int) -> bytes | None:
    """A version's blob, received in binary (see ``_insert_version``)."""
    with binary_vector_cursor() as cursor:
        cursor.execute(f"SELECT blob FROM {TrainedModel._meta.db_table} WHERE id = %s", [pk], binary=True)
        row = cursor.fetchone()
    return None if row is None else bytes(row[0])


def training_config(config: dict | None) -> seqmodel.SeqConfig:
    """The strategy's training config with the site's ``LIVEREC["SEQUENTIAL"]`` limits applied."""
    limits = settings.SEQUENTIAL
    return seqmodel.SeqConfig.from_dict({**(config or {}),
                                         "full_softmax_max_items": int(limits["FULL_SOFTMAX_MAX_ITEMS"])})


def train_and_store(config: dict | None = None, *, threads: int | None = None,
                    progress: Callable[[int, float, seqmodel.NextItemModel], None] | None = None,
                    backfill: bool = True) -> TrainedModel | None:
    """Train on the whole log and store a new version. None when there is nothing to learn.

    ``backfill``: then compute every visitor's state under the new version (``backfill_states``).
    """
    cfg = training_config(config)
    started = time.monotonic()
    # Where the next volume check counts from (an event committed later under a lower id is
    # left to the next full training).
    last_event_id = Event.objects.aggregate(m=Max("id"))["m"] or 0
    seqs = sequences_from_log()
    item_ids, text = _catalogue_text()
    # Items seen in events but not (yet) in the catalogue still belong in the vocabulary.
    known = set(item_ids)
    extra = sorted({i for s in seqs.values() for i in s} - known)
    if extra:
        item_ids = item_ids + extra
        if text is not None:
            text = np.vstack([text, np.zeros((len(extra), text.shape[1]), dtype=np.float32)])
    transitions = sum(max(0, len(s) - 1) for s in seqs.values())
    if not item_ids or transitions == 0:
        return None
    model = seqmodel.train(list(seqs.values()), item_ids, text, cfg, progress=progress, threads=threads)
    metrics = {"visitors": len(seqs), "transitions": transitions, "items": len(item_ids),
               "seconds": round(time.monotonic() - started, 2), "config": cfg.__dict__,
               "softmax": "full" if cfg.full_softmax(len(item_ids)) else "sampled"}
    metrics["last_event_id"] = last_event_id
    return _store(model, metrics, backfill)


def _store(model: seqmodel.NextItemModel, metrics: dict, backfill: bool) -> TrainedModel:
    """Store ``model`` as the next version (pruning old ones); then, with ``backfill``, every
    visitor's state under it."""
    model.metrics = metrics
    blob = seqmodel.dumps(model)
    with transaction.atomic():
        last = (TrainedModel.objects.select_for_update().filter(name=MODEL_NAME)
                .aggregate(v=Max("version"))["v"] or 0)
        row = _insert_version(last + 1, blob, metrics)
        stale = TrainedModel.objects.filter(name=MODEL_NAME, version__lte=last + 1 - KEEP_VERSIONS)
        stale.delete()
    forget_checks()  # this process sees the new version now; the others within CHECK_SECONDS
    if backfill:
        model.row_id = row.pk
        backfill_states(model)
    return row


def _newest_version() -> TrainedModel | None:
    return TrainedModel.objects.defer("blob").filter(name=MODEL_NAME).order_by("-version").first()


def _events_after(row: TrainedModel):
    """Engaged events logged after ``row`` trained (by id; versions stored before ids were
    recorded: by arrival time)."""
    last_event_id = (row.metrics or {}).get("last_event_id")
    if last_event_id is None:
        return _engaged().filter(received_at__gt=row.created_at)
    return _engaged().filter(id__gt=int(last_event_id))


def engaged_events_since_training(limit: int) -> int:
    """Engaged events since the newest version (all of them without one), counted up to ``limit``."""
    row = _newest_version()
    qs = _engaged() if row is None else _events_after(row)
    return qs.values("id")[:limit].count()


def warm_start_and_store(config: dict | None = None, *, threads: int | None = None,
                         backfill: bool = True) -> TrainedModel | None:
    """A new version continued from the newest one on recent events (``seqmodel.warm_start``):
    ``LIVEREC["SEQUENTIAL"]["WARM_START_EPOCHS"]`` epochs over the histories of the visitors
    with engaged events since it, over today's catalogue (new items start from their text).
    None without a previous version or recent events."""
    row = _newest_version()
    blob = _read_blob(row.pk) if row is not None else None
    if blob is None:
        return None
    started = time.monotonic()
    last_event_id = Event.objects.aggregate(m=Max("id"))["m"] or 0
    visitors = sorted(set(_events_after(row).values_list("visitor_id", flat=True)))
    if not visitors:
        return None
    previous = seqmodel.loads(blob)
    cfg = training_config({**(config or {}), "epochs": int(settings.SEQUENTIAL["WARM_START_EPOCHS"])})
    # Each history cut to its newest 2 x max_len items: the recent transitions with context.
    seqs = {v: s[-2 * previous.config.max_len:] for v, s in sequences_from_log(visitors).items()}
    item_ids, text = _catalogue_text()
    extra = sorted({i for s in seqs.values() for i in s} - set(item_ids))
    if extra:
        item_ids = item_ids + extra
        if text is not None:
            text = np.vstack([text, np.zeros((len(extra), text.shape[1]), dtype=np.float32)])
    model = seqmodel.warm_start(previous, list(seqs.values()), item_ids, text, cfg, threads=threads)
    transitions = sum(max(0, len(s) - 1) for s in seqs.values())
    metrics = {"warm_start_from": row.version, "visitors": len(seqs), "transitions": transitions,
               "items": len(item_ids), "new_items": len(set(item_ids) - set(previous.index)),
               "seconds": round(time.monotonic() - started, 2), "config": asdict(model.config),
               "softmax": "full" if model.config.full_softmax(len(item_ids)) else "sampled",
               "last_event_id": last_event_id}
    return _store(model, metrics, backfill)


# At most one volume-triggered training at a time, across workers; longer than any run.
_TRAINING_LOCK = "liverec:sequential:training"
_TRAINING_LOCK_SECONDS = 6 * 3600


def retrain_if_due(config: dict | None = None, *, threads: int | None = None) -> str:
    """The volume schedule (``LIVEREC["SEQUENTIAL"]``): the first training once enough events
    are logged, then a warm start every ``RETRAIN_AFTER_EVENTS`` engaged events. Returns what
    it did: "first training", "warm start", "not due" or "busy" (another run holds the lock)."""
    from django.core.cache import cache

    limits = settings.SEQUENTIAL
    first = _newest_version() is None
    due = int(limits["FIRST_TRAINING_MIN_EVENTS"] if first else limits["RETRAIN_AFTER_EVENTS"])
    if engaged_events_since_training(due) < due:
        return "not due"
    if not cache.add(_TRAINING_LOCK, 1, _TRAINING_LOCK_SECONDS):
        return "busy"
    try:
        if first:
            return "first training" if train_and_store(config, threads=threads) else "not due"
        return "warm start" if warm_start_and_store(config, threads=threads) else "not due"
    finally:
        cache.delete(_TRAINING_LOCK)


_cache: dict[str, tuple[tuple, seqmodel.NextItemModel]] = {}
_lock = threading.Lock()
# How long a process trusts its (model version, newest item) key before reading it again: the
# two lookups were 8% of a for-you request's time at 100k items. A model trained in this
# process is seen at once (``forget_checks``); other processes follow within this time.
CHECK_SECONDS = 1.0
_checked: dict[str, tuple[tuple, float]] = {}


def forget_checks() -> None:
    _checked.clear()


def _model_key() -> tuple:
    """(database, newest model version's id, newest item's id), in one round trip."""
    db = connection.settings_dict["NAME"]
    now = time.monotonic()
    seen = _checked.get(db)
    if seen is not None and now - seen[1] < CHECK_SECONDS:
        return seen[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT id FROM {TrainedModel._meta.db_table} WHERE name = %s ORDER BY version DESC LIMIT 1), "
            f"(SELECT max(id) FROM {Item._meta.db_table})", [MODEL_NAME])
        latest, newest_item = cursor.fetchone()
    key = (db, latest, newest_item or 0)
    _checked[db] = (key, now)
    return key


def _items_unknown_to(model: seqmodel.NextItemModel) -> tuple[list[str], np.ndarray]:
    """Embedded catalogue items the model's vocabulary lacks, with their text embeddings.

    The difference is taken here, not in SQL: the vocabulary holds every item (a million at
    the largest catalogue benchmarked), too many for an ``IN`` list.
    """
    encoder = get_encoder()
    table = Item._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT item_id FROM {table} WHERE embedding_model = %s AND embedding IS NOT NULL",
                       [encoder.name])
        missing = [r[0] for r in cursor.fetchall() if r[0] not in model.index]
    if not missing:
        return [], np.zeros((0, encoder.dim), dtype=np.float32)
    rows = [(i, e.to_numpy()) for i, e in fetch_binary(f"SELECT item_id, embedding FROM {table} WHERE item_id = ANY(%s)",
                                                        [missing])
            if e is not None and e.dimensions() == encoder.dim]
    return [r[0] for r in rows], np.asarray([r[1] for r in rows], dtype=np.float32).reshape(-1, encoder.dim)


def current_model() -> seqmodel.NextItemModel | None:
    """The newest stored version, loaded once per process (a cheap id query per second).

    Catalogue items added after training are appended from their text embeddings, so they
    can be recommended before the next training run.
    """
    key = _model_key()
    latest = key[1]
    if latest is None:
        return None
    cached = _cache.get(MODEL_NAME)
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        cached = _cache.get(MODEL_NAME)
        if cached is not None and cached[0][:2] == key[:2]:
            model = cached[1]
        else:
            blob = _read_blob(latest)
            if blob is None:  # pruned or rolled back since the key was read
                forget_checks()
                return None
            model = seqmodel.loads(bytes(blob))
            model.row_id = latest  # which version a stored visitor state must come from
        new_ids, new_text = _items_unknown_to(model)
        if new_ids:
            model.add_items(new_ids, new_text)
        model.prepare_search(wait=False)  # large catalogues: candidate search built in the background
        _cache[MODEL_NAME] = (key, model)
    return model


# --- visitor states: the model's hidden state per visitor, a projection of the log ------------
# A request ranks from the stored state (``seqmodel.NextItemModel.top_from_hidden``) instead of
# running the transformer: the forward pass was ~40% of a for-you ranking on the demo
# catalogue. States are computed in batches, one forward pass per member for all the visitors
# a fold touched (``update_states``, realtime worker) or, after a training run, for everyone
# (``backfill_states``, batch worker).

# Visitors per forward pass in a backfill (a (500, 50, d) batch is a few MB).
BACKFILL_CHUNK = 500


@dataclass
class StateBatch:
    """The states ``compute_states`` made, before and after they are stored.

    ``states`` holds them as the engine reads them (``interests.visitor_snapshots``): the
    realtime cycle ranks its pushes from these and writes the rows after the sends
    (``write``), one round trip fewer before the push. Until written, a request elsewhere
    finds the older row, whose basis no longer matches the profile, and takes the full path.
    """

    states: dict[str, seqmodel.VisitorState] = field(default_factory=dict)
    basis: dict[str, int] = field(default_factory=dict)  # the profile's fold position each was computed at

    def write(self) -> int:
        """Store the rows; a row never replaces one of a newer basis or model. Returns rows written."""
        visitors = sorted(self.states)
        if not visitors:
            return 0
        rows = [self.states[v] for v in visitors]
        table = VisitorSequenceState._meta.db_table
        with span("q:insert"), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} AS t (visitor_id, model_id, basis, state, last_item_id, updated_at) "
                f"SELECT v, m, b, s, l, now() FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bytea[], %s::text[]) "
                f"  AS x(v, m, b, s, l) "
                f"ON CONFLICT (visitor_id) DO UPDATE SET model_id = EXCLUDED.model_id, basis = EXCLUDED.basis, "
                f"  state = EXCLUDED.state, last_item_id = EXCLUDED.last_item_id, updated_at = now() "
                f"WHERE (EXCLUDED.model_id, EXCLUDED.basis) >= (t.model_id, t.basis)",
                [visitors, [s.model_id for s in rows], [self.basis[v] for v in visitors],
                 [b"" if s.hidden is None else s.hidden.tobytes() for s in rows], [s.last_item_id for s in rows]])
        return len(visitors)


def compute_states(visitor_ids, model: seqmodel.NextItemModel | None = None) -> StateBatch:
    """The states of these visitors under the serving model (an empty batch without one),
    computed but not stored (``StateBatch.write``).

    Each state records the profile's fold position it was computed at (``basis``): a row older
    than the profile is not read (see ``VisitorSequenceState``), and a concurrent writer with
    an older basis or model never overwrites a newer row.
    """
    ids = sorted(set(visitor_ids))
    model = model or current_model()
    model_id = model.row_id if model is not None else None
    if not ids or model_id is None:
        return StateBatch()
    events = Event._meta.db_table
    with span("q:history"), connection.cursor() as cursor:
        # One round trip: each visitor's fold position and last max_len engaged items, oldest
        # first (the history ``visitor_sequence_titled`` reads per request), with their titles
        # (the reason names the newest).
        cursor.execute(
            f"SELECT q.v, p.last_event_id, e.item_id, i.title FROM unnest(%s::text[]) AS q(v) "
            f"JOIN {VisitorProfile._meta.db_table} p ON p.visitor_id = q.v "
            f"LEFT JOIN LATERAL (SELECT item_id, occurred_at, id FROM {events} WHERE visitor_id = q.v "
            f"  AND {_ENGAGED} ORDER BY occurred_at DESC, id DESC LIMIT %s) e ON true "
            f"LEFT JOIN {Item._meta.db_table} i ON i.item_id = e.item_id "
            f"ORDER BY q.v, e.occurred_at, e.id", [ids, _item_event_names(), model.config.max_len])
        rows = cursor.fetchall()
    basis: dict[str, int] = {}
    items: dict[str, list[str]] = defaultdict(list)
    titles: dict[str, str] = {}
    for visitor_id, last_event_id, item_id, title in rows:
        basis[visitor_id] = last_event_id
        if item_id is not None:
            items[visitor_id].append(item_id)
            titles[item_id] = title or ""
    with span("q:forward"):
        encoded = {v: model.encode_history(items.get(v, ())) for v in basis}
        known = [v for v in basis if encoded[v]]
        hidden = dict(zip(known, model.hidden_states([encoded[v] for v in known]))) if known else {}
    states = {}
    for v in basis:
        last = next((i for i in reversed(items.get(v, ())) if i in model.index), "")
        flat = np.ascontiguousarray(hidden[v], dtype=np.float32).reshape(-1) if v in hidden else None
        states[v] = seqmodel.VisitorState(int(model_id), flat, last, titles.get(last, "") if last else "")
    return StateBatch(states, basis)


def update_states(visitor_ids, model: seqmodel.NextItemModel | None = None) -> int:
    """Recompute and store the states of these visitors under the serving model; returns rows
    written (``compute_states``, then ``StateBatch.write``)."""
    return compute_states(visitor_ids, model).write()


def backfill_states(model: seqmodel.NextItemModel | None = None, chunk: int = BACKFILL_CHUNK) -> int:
    """States of every profiled visitor under ``model`` (default: the serving one), after a
    training run or a replay; returns rows written."""
    model = model or current_model()
    if model is None:
        return 0
    written, after = 0, ""
    while True:
        ids = list(VisitorProfile.objects.filter(visitor_id__gt=after).order_by("visitor_id")
                   .values_list("visitor_id", flat=True)[:chunk])
        if not ids:
            return written
        written += update_states(ids, model)
        after = ids[-1]


def state_from_row(model_id, fresh, blob, last_item_id, last_title) -> seqmodel.VisitorState | None:
    """A stored state as the engine reads it (``interests.visitor_snapshots``); None when absent or stale."""
    if model_id is None or not fresh:
        return None
    blob = bytes(blob or b"")
    hidden = np.frombuffer(blob, dtype=np.float32) if blob else None
    return seqmodel.VisitorState(int(model_id), hidden, last_item_id or "", last_title or "")
