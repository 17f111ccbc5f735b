"""Maximal marginal relevance: trade a little relevance for a list that is not all one thing."""
from __future__ import annotations

import numpy as np

from .models import Item
from .strategies.base import Candidate


def mmr(ranked: list[Candidate], k: int, diversity: float) -> list[Candidate]:
    """Pick ``k`` of ``ranked`` greedily by ``(1 - d) * relevance - d * max cosine to picked``.

    ``diversity`` = 0 keeps the fused order. Relevance is the fused score scaled to [0, 1];
    items without an embedding count as dissimilar to everything.
    """
    if diversity <= 0 or len(ranked) <= 1:
        return ranked[:k]
    diversity = min(1.0, diversity)
    pool = ranked[: max(k * 3, k)]
    vecs = {}
    for item_id, emb in Item.objects.filter(item_id__in=[c.item_id for c in pool]).values_list("item_id", "embedding"):
        if emb is not None:
            v = np.asarray(emb, dtype=np.float32)
            n = float(np.linalg.norm(v))
            if n > 0:
                vecs[item_id] = v / n
    top = max(c.score for c in pool) or 1.0
    picked: list[Candidate] = []
    rest = list(pool)
    while rest and len(picked) < k:
        def value(c: Candidate) -> float:
            v = vecs.get(c.item_id)
            sim = 0.0
            if v is not None:
                sims = [float(v @ vecs[p.item_id]) for p in picked if p.item_id in vecs and vecs[p.item_id].shape == v.shape]
                sim = max(sims, default=0.0)
            return (1 - diversity) * c.score / top - diversity * sim
        best = max(rest, key=value)
        picked.append(best)
        rest.remove(best)
    return picked
