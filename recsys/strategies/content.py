"""content/interests: pgvector nearest neighbours of each interest centroid, weighted."""
from __future__ import annotations

from django.db import connection

from ..encoders import get_encoder
from ..models import Item
from ..services.vectors import cast_expr, to_literal
from .base import Candidate, Reason, RequestContext, Strategy


def nearest_items(vec, n: int, exclude: set[str]) -> list[tuple[str, str, float]]:
    """(item_id, title, cosine similarity) of the ``n`` nearest items by HNSW."""
    encoder = get_encoder()
    dim = encoder.dim
    expr = cast_expr(dim)
    # Over-fetch: excluded items are filtered after the index scan.
    fetch = n + len(exclude)
    with connection.cursor() as cursor:
        if fetch > 40:  # HNSW returns at most ef_search rows (default 40)
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(min(1000, fetch))])
        cursor.execute(
            f"SELECT item_id, title, 1 - ({expr} <=> %s::vector({dim})) AS sim FROM {Item._meta.db_table} "
            f"WHERE vector_dims(embedding) = {dim} AND available "
            f"ORDER BY {expr} <=> %s::vector({dim}) LIMIT %s",
            [to_literal(vec), to_literal(vec), fetch],
        )
        rows = cursor.fetchall()
    return [r for r in rows if r[0] not in exclude][:n]


class InterestVectors(Strategy):
    id = "content/interests"
    DEFAULT_CONFIG = {"short_term_mix": 0.5, "per_interest": 50}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        from ..interest_model import query_vectors

        if ctx.state is None:
            return []
        out: dict[str, Candidate] = {}
        per = max(n, int(self.config["per_interest"]))
        for vec, weight, idx in query_vectors(ctx.state, self.config["short_term_mix"]):
            label = ""
            if idx is not None:
                label = ctx.state.interests[idx].label
            for item_id, title, sim in nearest_items(vec, per, ctx.exclude):
                score = weight * max(sim, 0.0)
                cand = out.get(item_id)
                if cand is None:
                    cand = out[item_id] = Candidate(item_id, 0.0)
                cand.score += score
                text = (f"Matches your interest in {label}" if label else
                        "Matches your interests" if idx is not None else "Like what you are browsing now")
                if not any(r.text == text for r in cand.reasons):
                    cand.reasons.append(Reason(self.id, text, interest=idx))
        return sorted(out.values(), key=lambda c: -c.score)[:n]


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
                for item_id, _title, sim in nearest_items(row[0], n, exclude)]
