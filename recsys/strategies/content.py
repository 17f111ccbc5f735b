"""content/interests: pgvector nearest neighbours of each interest centroid, weighted."""
from __future__ import annotations

import numpy as np
from django.db import connection

from ..encoders import get_encoder
from ..models import Item
from ..services.vectors import cast_expr
from .base import Candidate, Reason, RequestContext, Strategy


def nearest_items(vec, n: int, exclude: set[str]) -> list[tuple[str, float]]:
    """(item_id, cosine similarity) of the ``n`` nearest available items by HNSW."""
    return nearest_items_many([vec], n, exclude)[0]


_ef_search: dict[int, tuple[object, int]] = {}


def _ensure_ef_search(cursor, fetch: int) -> None:
    """HNSW returns at most ef_search rows (default 40): raise it for this connection when a
    query asks for more. Remembered per connection, so it costs one round trip, once."""
    want = min(1000, max(40, fetch))
    raw = connection.connection  # the DB session: a reconnect starts again at the default
    if _ef_search.get(id(raw), (None, 40))[0] is not raw or _ef_search[id(raw)][1] < want:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(want)])
        if len(_ef_search) > 64:  # connections come and go; forget the closed ones
            _ef_search.clear()
        _ef_search[id(raw)] = (raw, want)


def nearest_items_many(vecs: list, n: int, exclude: set[str]) -> list[list[tuple[str, float]]]:
    """``nearest_items`` for several query vectors in one round trip (a LATERAL HNSW scan each).

    Returns, per vector, (item_id, cosine similarity) of its ``n`` nearest available items.
    """
    if not vecs:
        return []
    from ..services.vectors import binary_vector_cursor

    dim = get_encoder().dim
    expr = cast_expr(dim)
    fetch = n + len(exclude)
    # One query vector per VALUES row, sent in binary: the text literals cost 5% of a for-you
    # request, and a per-row text->vector cast inside the scan had tripled its cost.
    values = ", ".join(f"({i}, %s::vector({dim}))" for i in range(1, len(vecs) + 1))
    with binary_vector_cursor() as cursor:
        _ensure_ef_search(cursor, fetch)
        cursor.execute(
            f"SELECT q.i, x.item_id, x.sim FROM (VALUES {values}) AS q(i, v) "
            f"CROSS JOIN LATERAL (SELECT item_id, 1 - ({expr} <=> q.v) AS sim FROM {Item._meta.db_table}"
            f" WHERE vector_dims(embedding) = {dim} AND available ORDER BY {expr} <=> q.v LIMIT %s) x",
            [*(np.asarray(v, dtype=np.float32) for v in vecs), fetch],
        )
        rows = cursor.fetchall()
    out: list[list[tuple[str, float]]] = [[] for _ in vecs]
    for i, item_id, sim in rows:
        if item_id not in exclude and len(out[i - 1]) < n:
            out[i - 1].append((item_id, float(sim)))
    return out


class InterestVectors(Strategy):
    id = "content/interests"
    # max_vectors: the strongest interests searched (the short-term direction always is). Each
    # is one HNSW scan (~3 ms at 100k items here), the bulk of a for-you request's time.
    DEFAULT_CONFIG = {"short_term_mix": 0.5, "per_interest": 24, "max_vectors": 3}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        from ..interest_model import query_vectors

        if ctx.state is None:
            return []
        out: dict[str, Candidate] = {}
        per = min(n, int(self.config["per_interest"]))
        queries = query_vectors(ctx.state, self.config["short_term_mix"])
        keep = max(1, int(self.config["max_vectors"]))
        if len(queries) > keep:  # the short-term direction (idx None) plus the heaviest interests
            short = [q for q in queries if q[2] is None]
            heavy = sorted((q for q in queries if q[2] is not None), key=lambda q: -q[1])[: keep - len(short)]
            queries = heavy + short
        found = nearest_items_many([vec for vec, _, _ in queries], per, ctx.exclude)
        for (vec, weight, idx), rows in zip(queries, found):
            label = ""
            if idx is not None:
                label = ctx.state.interests[idx].label
            text = (f"Matches your interest in {label}" if label else
                    "Matches your interests" if idx is not None else "Like what you are browsing now")
            for item_id, sim in rows:
                score = weight * max(sim, 0.0)
                cand = out.get(item_id)
                if cand is None:
                    cand = out[item_id] = Candidate(item_id, 0.0)
                cand.score += score
                if not any(r.text == text for r in cand.reasons):
                    cand.reasons.append(Reason(self.id, text, interest=idx))
        return sorted(out.values(), key=lambda c: (-c.score, c.item_id))[:n]


class SimilarItems(Strategy):
    """similar/items: "more like this" for the item on the page (content neighbours)."""

    id = "similar/items"
    DEFAULT_CONFIG = {}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        if not ctx.item_id:
            return []
        row = Item.objects.filter(item_id=ctx.item_id, embedding_model=get_encoder().name).values_list("embedding", "title").first()
        if row is None or row[0] is None:
            return []
        exclude = ctx.exclude | {ctx.item_id}
        return [Candidate(item_id, max(sim, 0.0), [Reason(self.id, f"Similar to {row[1]}", item_id=ctx.item_id)])
                for item_id, sim in nearest_items(row[0], n, exclude)]
