"""search/hybrid: the visitor's search, full-text and semantic, fused and personalised."""
from __future__ import annotations

from ..services import search
from .base import Candidate, RequestContext, Strategy


class HybridSearch(Strategy):
    """Items for ``context["query"]`` (``recsys.services.search``); nothing without a query.

    ``personal_weight``: how far the visitor's interests re-rank the fused result (0: the
    same list for everyone). ``min_similarity``: the cosine to the query under which an item
    the full text did not find is no result (``search.MIN_SIMILARITY``, 0.45).
    """

    id = "search/hybrid"
    DEFAULT_CONFIG = {"depth": search.DEPTH, "rrf_k": search.RRF_K, "personal_weight": search.PERSONAL_WEIGHT,
                      "lexical_weight": search.LEXICAL_WEIGHT, "short_term_mix": 0.5, "mode": "hybrid",
                      "min_similarity": search.MIN_SIMILARITY}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        if not ctx.query.strip():
            return []
        return search.search(ctx.query, n, exclude=ctx.exclude, state=ctx.state, mode=str(self.config["mode"]),
                             depth=int(self.config["depth"]), rrf_k=int(self.config["rrf_k"]),
                             personal_weight=float(self.config["personal_weight"]),
                             lexical_weight=float(self.config["lexical_weight"]),
                             short_term_mix=float(self.config["short_term_mix"]),
                             min_similarity=float(self.config["min_similarity"]))
