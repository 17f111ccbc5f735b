"""Semantic search over the catalogue: PostgreSQL full-text and pgvector, fused by
reciprocal rank, then re-ranked by the visitor's interests.

- Lexical: the item's weighted tsvector (title A, categories B, text C; migration
  ``0008_search``, a GIN index) against the query's words OR-ed (``plainto_tsquery`` ANDs
  them, and a three-word query then misses every item that lacks one word), ranked by
  ``ts_rank_cd``.
- Vector: the query embedded by the site's encoder (``services.queries.embed_query``, cached),
  nearest items by HNSW.
- Fusion: reciprocal rank fusion (Cormack, Clarke & Buettcher 2009), ``sum 1 / (k + rank)``
  with k = 60, over the two lists' top ``depth``: ranks, not scores, so a ts_rank and a cosine
  never need a common scale.
- Floor: an item whose cosine to the query is under ``min_similarity`` (0.45) and that holds
  none of the query's words is not a result: a list of weak matches would read "Matches your
  search" for items that do not (``bench/bench_reason_floors.py`` prints the cosines). The
  list is then shorter than asked for.
- Personal: ``(1 - w) * fused / max fused + w * cosine`` to the visitor's closest interest (or
  short-term direction); an item that rose because of an interest, and is close to it
  (``reasons.INTEREST_MIN_SIMILARITY``), gets that interest as a second reason.

``bench/bench_search.py`` measures each stage on a judged query set (NDCG@10).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import reasons
from ..interest_model import query_vectors
from ..models import Item
from ..strategies.base import Candidate, Reason
from ..strategies.content import nearest_items
from .queries import embed_query as cached
from .vectors import fetch_binary

RRF_K = 60
DEPTH = 100
# Both weights chosen by ``bench/bench_search.py --tune`` on its validation queries (one per
# genre), over a grid of lexical 1/0.5/0.3/0.2/0.1 and personal 0.3/0.5/0.7: unweighted RRF
# (lexical 1) lost to the vector list alone (NDCG@10 0.324 against 0.37) where titles hold few
# of the query's words; on the held-out queries these give hybrid 0.357, hybrid + personal
# 0.371, vector alone 0.371, lexical alone 0.140.
PERSONAL_WEIGHT = 0.5
#: The full-text list's weight in the fusion, relative to the vector list's 1.
LEXICAL_WEIGHT = 0.2
#: The cosine to the query under which an item without a lexical hit is no result. With
#: all-MiniLM-L6-v2 on the twelve-film test catalogue, "space adventure aliens" gives Aliens
#: 0.72, Alien 0.67, Star Wars 0.53, The Terminator 0.46, and the films it does not describe
#: 0.33-0.41 (Toy Story 0.41, Casablanca 0.35, Cinderella 0.33); "sci fi thriller" puts the
#: five sci-fi films at 0.43-0.74 and the five children's films at 0.17-0.29.
MIN_SIMILARITY = 0.45
MODES = ("lexical", "vector", "hybrid")
#: The text search configuration of the index (migration 0008_search): a query must use it too.
TS_CONFIG = "english"


def embed_query(query: str) -> np.ndarray:
    """The query's embedding, from the one cached query embedder (``services.queries``)."""
    return cached(query)


def lexical(query: str, n: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """(item_id, ts_rank_cd) of the ``n`` best full-text matches among available items."""
    table = Item._meta.db_table
    rows = fetch_binary(
        f"SELECT item_id, ts_rank_cd(recsys_item_tsvector(title, text, categories), q) AS r "
        f"FROM {table}, CAST(replace(CAST(plainto_tsquery('{TS_CONFIG}', %s) AS text), '&', '|') AS tsquery) AS q "
        f"WHERE recsys_item_tsvector(title, text, categories) @@ q AND available AND item_id <> ALL(%s::text[]) "
        f"ORDER BY r DESC, item_id LIMIT %s", [query, list(exclude), n])
    return [(item_id, float(r)) for item_id, r in rows]


def vector(query: str, n: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """(item_id, cosine) of the ``n`` items nearest the query's embedding."""
    return nearest_items(embed_query(query), n, set(exclude))


def rrf(ranked_lists: Iterable[list[tuple[str, float]]], k: int = RRF_K,
        weights: Iterable[float] | None = None) -> dict[str, float]:
    """Reciprocal rank fusion: each list adds ``weight / (k + rank)`` (rank from 1) to its items
    (weights default to 1: the original, unweighted RRF)."""
    fused: dict[str, float] = {}
    lists = list(ranked_lists)
    for ranked, weight in zip(lists, weights if weights is not None else [1.0] * len(lists)):
        for rank, (item_id, _) in enumerate(ranked, start=1):
            fused[item_id] = fused.get(item_id, 0.0) + weight / (k + rank)
    return fused


def _unit_vectors(item_ids: list[str]) -> dict[str, np.ndarray]:
    rows = fetch_binary(f"SELECT item_id, embedding FROM {Item._meta.db_table} "
                        f"WHERE item_id = ANY(%s) AND embedding IS NOT NULL", [item_ids])
    out = {}
    for item_id, emb in rows:
        v = np.asarray(emb.to_numpy() if hasattr(emb, "to_numpy") else emb, dtype=np.float32)
        norm = float(np.linalg.norm(v))
        if norm > 1e-12:
            out[item_id] = v / norm
    return out


def interest_affinity(item_ids: list[str], state: Any, short_term_mix: float = 0.5
                      ) -> dict[str, tuple[float, int | None]]:
    """{item_id: (cosine to the visitor's closest interest or short-term direction, that
    interest's index or None)} for items with an embedding."""
    queries = query_vectors(state, short_term_mix) if state is not None else []
    if not queries or not item_ids:
        return {}
    vecs = _unit_vectors(item_ids)
    if not vecs:
        return {}
    dim = next(iter(vecs.values())).shape[0]
    queries = [q for q in queries if np.asarray(q[0]).shape[-1] == dim]
    if not queries:
        return {}
    ids = list(vecs)
    sims = np.stack([vecs[i] for i in ids]) @ np.stack([np.asarray(q[0], dtype=np.float32) for q in queries]).T
    best = sims.argmax(axis=1)
    return {item_id: (float(sims[row, best[row]]), queries[int(best[row])][2]) for row, item_id in enumerate(ids)}


def search(query: str, n: int, *, exclude: Iterable[str] = (), state: Any = None, mode: str = "hybrid",
           depth: int = DEPTH, rrf_k: int = RRF_K, personal_weight: float = PERSONAL_WEIGHT,
           lexical_weight: float = LEXICAL_WEIGHT, short_term_mix: float = 0.5,
           min_similarity: float = MIN_SIMILARITY) -> list[Candidate]:
    """Up to ``n`` best items for ``query``, each with its reasons: fewer when fewer match (a
    full-text hit, or a cosine to the query of at least ``min_similarity``).

    ``mode``: "lexical" or "vector" alone, or "hybrid" (their fusion). ``state``: the
    visitor's interest state (``InterestState``), which re-ranks the result when
    ``personal_weight`` > 0.
    """
    if mode not in MODES:
        raise ValueError(f"search mode {mode!r}: choose one of {MODES}")
    query = query.strip()[:256]
    if not query:
        return []
    exclude = set(exclude)
    depth = max(depth, n)
    lists, weights = [], []
    hits: set[str] = set()
    if mode in ("lexical", "hybrid"):
        found = lexical(query, depth, exclude)
        hits = {item_id for item_id, _ in found}
        lists.append(found)
        weights.append(lexical_weight if mode == "hybrid" else 1.0)
    if mode in ("vector", "hybrid"):
        # A near item is a match only when it is near enough, or the full text found it too.
        lists.append([(i, sim) for i, sim in vector(query, depth, exclude) if sim >= min_similarity or i in hits])
        weights.append(1.0)
    scores = rrf(lists, rrf_k, weights)
    if not scores:
        return []
    top = max(scores.values())
    base = sorted(scores, key=lambda i: (-scores[i], i))
    final = {i: scores[i] / top for i in base}
    affinity: dict[str, tuple[float, int | None]] = {}
    if state is not None and personal_weight > 0:
        affinity = interest_affinity(base, state, short_term_mix)
        final = {i: (1 - personal_weight) * s + personal_weight * max(affinity.get(i, (0.0, None))[0], 0.0)
                 for i, s in final.items()}
    ranked = sorted(final, key=lambda i: (-final[i], i))[:n]
    base_rank = {i: r for r, i in enumerate(base)}
    search_reason = (reasons.render("search", {"query": query[:60]}), [{"kind": "query", "query": query}])
    out = []
    for rank, item_id in enumerate(ranked):
        why = [Reason("search/hybrid", search_reason[0], kind="search", evidence=list(search_reason[1]))]
        sim, idx = affinity.get(item_id, (0.0, None))
        if idx is not None and rank < base_rank[item_id] and sim >= reasons.INTEREST_MIN_SIMILARITY:
            label = state.interests[idx].label
            if label:  # it rose on the visitor's interest: say which
                why.append(Reason("search/hybrid", reasons.render("interest", {"label": label}), interest=idx,
                                  kind="interest", evidence=[{"kind": "interest", "label": label}]))
        out.append(Candidate(item_id, final[item_id], why))
    return out
