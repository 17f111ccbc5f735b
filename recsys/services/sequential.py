"""The sequential model's data and life cycle: sequences from the log, training, versions.

The batch task ``recsys.tasks.train_sequential`` calls ``train_and_store``; the strategy
``sequential/next-item`` calls ``current_model`` and ``visitor_sequence`` per request.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Callable

import numpy as np
from django.db import connection, transaction
from django.db.models import Max

from tracking.models import Event

from .. import seqmodel
from ..conf import settings
from ..encoders import get_encoder
from ..models import Item, TrainedModel

MODEL_NAME = "sequential/next-item"
# Older versions are pruned; a few are kept to roll back or compare.
KEEP_VERSIONS = 3


def _item_event_names() -> list[str]:
    """Events that say "this visitor engaged with this item" (positive weight, item-bearing)."""
    return sorted(n for n, w in settings.EVENT_WEIGHTS.items() if w > 0 and n != "searched")


def sequences_from_log() -> dict[str, list[str]]:
    """Every visitor's engaged items, oldest first (ties in log order), from the event log."""
    seqs: dict[str, list[str]] = defaultdict(list)
    qs = (Event.objects.filter(name__in=_item_event_names(), is_bot=False, is_repeat=False).exclude(item_id="")
          .order_by("occurred_at", "id").values_list("visitor_id", "item_id"))
    for visitor_id, item_id in qs.iterator(chunk_size=20000):
        seqs[visitor_id].append(item_id)
    return seqs


def visitor_sequence(visitor_id: str, limit: int) -> list[str]:
    """The visitor's last ``limit`` engaged items, oldest first."""
    rows = list(Event.objects.filter(visitor_id=visitor_id, name__in=_item_event_names(), is_bot=False, is_repeat=False)
                .exclude(item_id="").order_by("-occurred_at", "-id").values_list("item_id", flat=True)[:limit])
    rows.reverse()
    return rows


def _catalogue_text() -> tuple[list[str], np.ndarray | None]:
    """All catalogue items and their text embeddings (zeros where an item has none yet)."""
    encoder = get_encoder()
    rows = list(Item.objects.order_by("pk").values_list("item_id", "embedding", "embedding_model"))
    ids = [r[0] for r in rows]
    if not rows:
        return ids, None
    text = np.zeros((len(rows), encoder.dim), dtype=np.float32)
    for n, (_, emb, model) in enumerate(rows):
        if emb is not None and model == encoder.name:
            text[n] = np.asarray(emb, dtype=np.float32)
    return ids, text


def train_and_store(config: dict | None = None, *, threads: int | None = None,
                    progress: Callable[[int, float, seqmodel.NextItemModel], None] | None = None) -> TrainedModel | None:
    """Train on the whole log and store a new version. None when there is nothing to learn."""
    cfg = seqmodel.SeqConfig.from_dict(config)
    started = time.monotonic()
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
               "seconds": round(time.monotonic() - started, 2), "config": cfg.__dict__}
    model.metrics = metrics
    blob = seqmodel.dumps(model)
    with transaction.atomic():
        last = (TrainedModel.objects.select_for_update().filter(name=MODEL_NAME)
                .aggregate(v=Max("version"))["v"] or 0)
        row = TrainedModel.objects.create(name=MODEL_NAME, version=last + 1, blob=blob, metrics=metrics)
        stale = TrainedModel.objects.filter(name=MODEL_NAME, version__lte=last + 1 - KEEP_VERSIONS)
        stale.delete()
    return row


_cache: dict[str, tuple[tuple, seqmodel.NextItemModel]] = {}
_lock = threading.Lock()


def current_model() -> seqmodel.NextItemModel | None:
    """The newest stored version, loaded once per process (a cheap id query per call).

    Catalogue items added after training are appended from their text embeddings, so they
    can be recommended before the next training run.
    """
    latest = TrainedModel.objects.filter(name=MODEL_NAME).order_by("-version").values_list("pk", flat=True).first()
    if latest is None:
        return None
    newest_item = Item.objects.aggregate(m=Max("pk"))["m"] or 0
    key = (connection.settings_dict["NAME"], latest, newest_item)
    cached = _cache.get(MODEL_NAME)
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        cached = _cache.get(MODEL_NAME)
        if cached is not None and cached[0][:2] == key[:2]:
            model = cached[1]
        else:
            blob = TrainedModel.objects.filter(pk=latest).values_list("blob", flat=True).first()
            model = seqmodel.loads(bytes(blob))
        encoder = get_encoder()
        rows = [(i, e) for i, e in Item.objects.exclude(item_id__in=list(model.index))
                .filter(embedding_model=encoder.name).values_list("item_id", "embedding") if e is not None]
        if rows:
            model.add_items([r[0] for r in rows], np.asarray([np.asarray(r[1], dtype=np.float32) for r in rows]))
        _cache[MODEL_NAME] = (key, model)
    return model
