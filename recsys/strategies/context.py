"""content/query: items matching the search the visitor just made (cold visitors included)."""
from __future__ import annotations

import numpy as np

from .. import reasons
from ..services.queries import embed_query
from .base import Candidate, Reason, RequestContext, Strategy
from .content import nearest_items


def query_vector(query: str) -> np.ndarray:
    # One place embeds and caches queries (recsys.services.queries): search reuses it.

    return embed_query(query)


class QueryMatch(Strategy):
    id = "content/query"
    DEFAULT_CONFIG = {"min_similarity": 0.0}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        query = ctx.query.strip()
        if not query:
            return []
        floor = float(self.config["min_similarity"])
        text = reasons.render("search", {"query": query[:60]})
        evidence = [{"kind": "query", "query": query[:256]}]
        return [Candidate(item_id, sim, [Reason(self.id, text, kind="search", evidence=evidence)])
                for item_id, sim in nearest_items(query_vector(query), n, ctx.exclude) if sim > floor]
