"""Keyphrases for readable interests: mined and embedded once, cached as one matrix per process."""
from __future__ import annotations

import threading
import time

import numpy as np
from django.db.models import Count, Max

from .. import interest_model as im
from .. import keyphrases as kp
from ..encoders import get_encoder
from ..models import Item, Keyphrase
from . import dispatch

_lock = threading.Lock()
_cache: dict[str, tuple[tuple, list[str], np.ndarray]] = {}
_checked_at: dict[str, float] = {}
# The phrase table changes only when the batch task re-mines it; checking its version on
# every fold cost ~5 ms (a DB round trip) of a ~6 ms labelling step. A worker picks up
# new phrases within this many seconds; mining in this process clears the cache at once.
RECHECK_SECONDS = 30.0


def mine_keyphrases() -> int:
    """Mine candidate phrases from the catalogue and embed those not embedded yet; returns the total."""
    encoder = get_encoder()
    docs = ((f"{title} {text}", cats) for title, text, cats in
            Item.objects.filter(available=True).values_list("title", "text", "categories").iterator(chunk_size=2000))
    mined = kp.mine(docs)
    known = set(Keyphrase.objects.filter(embedding_model=encoder.name).values_list("phrase", flat=True))
    new = [(p, df) for p, df in mined if p not in known]
    for start in range(0, len(new), 256):
        chunk = new[start:start + 256]
        vecs = encoder.encode([p for p, _ in chunk])
        Keyphrase.objects.bulk_create([Keyphrase(phrase=p, doc_freq=df, embedding=v, embedding_model=encoder.name)
                                       for (p, df), v in zip(chunk, vecs)], ignore_conflicts=True)
    for phrase, df in mined:
        if phrase in known:
            Keyphrase.objects.filter(embedding_model=encoder.name, phrase=phrase).exclude(doc_freq=df).update(doc_freq=df)
    _cache.pop(encoder.name, None)
    return Keyphrase.objects.filter(embedding_model=encoder.name).count()


# A site without mined keyphrases asks the batch worker to mine them at most this often
# (the nightly topics task mines them too); until then interests are named by their items.
MINING_REQUEST_SECONDS = 600


def request_mining() -> bool:
    """Ask the batch worker for ``refresh_topics`` (keyphrases, then topics), after commit;
    at most once per MINING_REQUEST_SECONDS across processes. True when it asked."""
    from django.core.cache import cache
    from django.db import transaction

    if not cache.add("liverec:keyphrases:requested", 1, MINING_REQUEST_SECONDS):
        return False
    transaction.on_commit(dispatch.task("refresh_topics").delay)
    return True


def phrase_matrix() -> tuple[list[str], np.ndarray]:
    """(phrases, unit embeddings) of the current encoder; reloaded when the table changes.

    The freshness check is one aggregate query; the matrix itself is read once.
    """
    name = get_encoder().name
    cached = _cache.get(name)
    if cached and time.monotonic() - _checked_at.get(name, 0.0) < RECHECK_SECONDS:
        return cached[1], cached[2]
    version = tuple(Keyphrase.objects.filter(embedding_model=name).aggregate(n=Count("id"), m=Max("id")).values())
    _checked_at[name] = time.monotonic()
    if cached and cached[0] == version:
        return cached[1], cached[2]
    with _lock:
        rows = list(Keyphrase.objects.filter(embedding_model=name).order_by("id").values_list("phrase", "embedding"))
        phrases = [p for p, _ in rows]
        if rows:
            matrix = np.asarray([e for _, e in rows], dtype=np.float32)
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        _cache[name] = (version, phrases, matrix)
    return phrases, matrix


def keywords(vector: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
    phrases, matrix = phrase_matrix()
    if not phrases or matrix.shape[1] != np.asarray(vector).shape[-1]:
        return []
    return kp.label(vector, phrases, matrix, top=top)


def label_interests(states: list[im.InterestState]) -> None:
    """Set each interest's label in place (cheap: a matrix-vector product per centroid)."""
    phrases, matrix = phrase_matrix()
    if not phrases:
        if states:
            request_mining()
        return
    for state in states:
        for it in state.interests:
            if it.vector.shape[-1] == matrix.shape[1]:
                it.label = kp.label_text(kp.label(it.vector, phrases, matrix))
