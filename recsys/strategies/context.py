"""content/query: items matching the search the visitor just made (cold visitors included)."""
from __future__ import annotations

import numpy as np

from .. import reasons
from ..services.queries import embed_query
from ..services.search import MIN_SIMILARITY
from .base import Candidate, Reason, RequestContext, Strategy
from .content import nearest_items


def query_vector(query: str) -> np.ndarray:
    # One place embeds and caches queries (recsys.services.queries): search reuses it.

    return embed_query(query)


class QueryMatch(Strategy):
    """Items near the query's embedding; ``min_similarity`` (the search's floor, 0.45): the
    cosine under which an item does not match the search and is left out."""

    id = "content/query"
    DEFAULT_CONFIG = {"min_similarity": MIN_SIMILARITY}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        query = ctx.query.strip()
        if not query:
            return []
        floor = float(self.config["min_similarity"])
        text = reasons.render("search", {"query": query[:60]})
        evidence = [{"kind": "query", "query": query[:256]}]
        return [Candidate(item_id, sim, [Reason(self.id, text, kind="search", evidence=evidence)])
                for item_id, sim in nearest_items(query_vector(query), n, ctx.exclude) if sim >= floor]
