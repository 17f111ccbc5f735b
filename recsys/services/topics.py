"""Catalogue topics (the seed's LDA topic model, done with embeddings) and each visitor's share of them."""
from __future__ import annotations

import numpy as np
from django.db import transaction

from .. import keyphrases as kp
from ..encoders import get_encoder
from ..models import CatalogueTopic, Item, VisitorProfile, VisitorTopics
from . import labels
from .interests import load_state

# Soft assignment temperature over cosine similarities: 0.05 gives a visitor whose
# interest sits between two topics a split, and one deep inside a topic ~90% of it.
TEMPERATURE = 0.05


def default_k(n_items: int) -> int:
    # ~sqrt(n/2), the usual rule of thumb: 29 topics for MovieLens' 1,682 films.
    return max(2, min(50, int(round((n_items / 2) ** 0.5))))


def recompute_topics(k: int | None = None, seed: int = 0) -> int:
    """k-means over the item vectors, topics labelled by keyphrases; returns the topic count."""
    from sklearn.cluster import KMeans

    name = get_encoder().name
    rows = list(Item.objects.filter(embedding_model=name, available=True).values_list("embedding", flat=True))
    if len(rows) < 2:
        return 0
    x = np.asarray(rows, dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = min(k or default_k(len(x)), len(x))
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    if not labels.phrase_matrix()[0]:
        labels.mine_keyphrases()
    topics = []
    for n, centroid in enumerate(model.cluster_centers_):
        scored = labels.keywords(centroid, top=3)
        topics.append(CatalogueTopic(number=n, label=kp.label_text(scored), keyphrases=[p for p, _ in scored],
                                     centroid=centroid.astype(np.float32), size=int((model.labels_ == n).sum()),
                                     embedding_model=name))
    with transaction.atomic():
        CatalogueTopic.objects.all().delete()
        CatalogueTopic.objects.bulk_create(topics)
    return len(topics)


def topic_distribution(profile: VisitorProfile, topics: list[CatalogueTopic] | None = None) -> dict[int, float]:
    """The visitor's shares over topics: each interest softly assigned, weighted by its weight."""
    topics = topics if topics is not None else list(CatalogueTopic.objects.all())
    if not topics:
        return {}
    c = np.asarray([t.centroid for t in topics], dtype=np.float32)
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    state = load_state(profile)
    total = np.zeros(len(topics))
    for it in state.interests:
        if it.weight <= 0 or it.vector.shape[-1] != c.shape[1]:
            continue
        sims = c @ it.direction()
        p = np.exp((sims - sims.max()) / TEMPERATURE)
        total += it.weight * p / p.sum()
    if total.sum() <= 0:
        return {}
    total /= total.sum()
    return {topics[i].number: round(float(total[i]), 4) for i in np.argsort(-total) if total[i] >= 0.01}


def recompute_visitor_topics(batch: int = 1000) -> int:
    """Every visitor's distribution over the current topics; returns visitors written."""
    topics = list(CatalogueTopic.objects.all())
    written = 0
    qs = VisitorProfile.objects.exclude(interests=[]).order_by("pk")
    rows = []
    for profile in qs.iterator(chunk_size=batch):
        rows.append(VisitorTopics(visitor_id=profile.visitor_id, distribution=topic_distribution(profile, topics)))
        if len(rows) >= batch:
            written += _write(rows)
            rows = []
    return written + _write(rows)


def _write(rows: list[VisitorTopics]) -> int:
    VisitorTopics.objects.bulk_create(rows, update_conflicts=True, unique_fields=["visitor_id"],
                                      update_fields=["distribution", "updated_at"])
    return len(rows)
