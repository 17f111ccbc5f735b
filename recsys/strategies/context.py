"""content/query: items matching the search the visitor just made (cold visitors included)."""
from __future__ import annotations

import numpy as np

from .base import Candidate, Reason, RequestContext, Strategy
from .content import nearest_items


def query_vector(query: str) -> np.ndarray:
    # One place embeds and caches queries (recsys.services.queries): search reuses it.
    from ..services.queries import embed_query

    return embed_query(query)


class QueryMatch(Strategy):
    id = "content/query"
    DEFAULT_CONFIG = {"min_similarity": 0.0}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        query = ctx.query.strip()
        if not query:
            return []
        floor = float(self.config["min_similarity"])
        text = f"Matches your search \u201c{query[:60]}\u201d"
        return [Candidate(item_id, sim, [Reason(self.id, text)])
                for item_id, sim in nearest_items(query_vector(query), n, ctx.exclude) if sim > floor]
