"""content/query: items matching the search the visitor just made (cold visitors included)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import reasons
from ..encoders import get_encoder
from .base import Candidate, Reason, RequestContext, Strategy
from .content import nearest_items


@lru_cache(maxsize=1024)
def _encode(encoder_name: str, query: str) -> tuple[float, ...]:
    # Keyed by encoder name so switching backends never serves a vector of the old one.
    # Measured: MiniLM encodes one short query in ~5-10 ms on one thread; repeats are free.
    return tuple(float(x) for x in get_encoder().encode([query])[0])


def query_vector(query: str) -> np.ndarray:
    return np.asarray(_encode(get_encoder().name, query.strip()[:256]), dtype=np.float32)


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
