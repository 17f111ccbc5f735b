"""content/interests: pgvector nearest neighbours of each interest centroid, weighted."""
from __future__ import annotations

import numpy as np
from django.db import connection

from .. import reasons
from ..reasons import INTEREST_MIN_SIMILARITY
from ..encoders import get_encoder
from ..interest_model import query_vectors
from ..models import Item
from ..services.vectors import binary_vector_cursor, cast_expr
from .base import Candidate, Reason, RequestContext, Steps, Strategy, run_steps


def nearest_items(vec, n: int, exclude: set[str]) -> list[tuple[str, float]]:
    """(item_id, cosine similarity) of the ``n`` nearest available items by HNSW."""
    return nearest_items_for([(vec, exclude)], n)[0]


_sessions: dict[int, tuple[object, int, bool]] = {}


def _prepare_session(cursor, fetch: int) -> bool:
    """Raise ``hnsw.ef_search`` for this connection when a query asks for more rows than it
    returns (default 40), and turn on pgvector's iterative index scans where the server has
    them (0.8+). Remembered per connection, so it costs one round trip, once. Returns whether
    scans are iterative: then a filtered scan goes on past excluded rows until it has ``LIMIT``
    rows, instead of the query reading ``LIMIT + excluded`` rows (a visitor who viewed 500
    items made each interest scan read 500 more rows).
    """
    want = min(1000, max(40, fetch))
    raw = connection.connection  # the DB session: a reconnect starts again at the defaults
    known = _sessions.get(id(raw))
    if known is not None and known[0] is raw and known[1] >= want:
        return known[2]
    cursor.execute(
        "WITH v AS (SELECT coalesce((SELECT string_to_array(extversion, '.')::int[] >= '{0,8}' "
        "  FROM pg_extension WHERE extname = 'vector'), false) AS iterative) "
        "SELECT set_config('hnsw.ef_search', %s, false), "
        "  CASE WHEN iterative THEN set_config('hnsw.iterative_scan', 'relaxed_order', false) END, iterative FROM v",
        [str(want)])
    iterative = bool(cursor.fetchone()[2])
    if len(_sessions) > 64:  # connections come and go; forget the closed ones
        _sessions.clear()
    _sessions[id(raw)] = (raw, want, iterative)
    return iterative


def nearest_items_for(queries: list[tuple[object, set[str]]], n: int) -> list[list[tuple[str, float]]]:
    """Per ``(vector, excluded item ids)``, the ``n`` nearest available items that are not
    excluded, most similar first: one round trip for all (a batch of requests' interests)."""
    return run_steps(nearest_items_steps(queries, n))


def nearest_items_steps(queries: list[tuple[object, set[str]]], n: int):
    """``nearest_items_for`` as a generator of its read (``base.Strategy.candidates_steps``)."""
    if not queries:
        return []

    dim = get_encoder().dim
    expr = cast_expr(dim)
    # One scan per query vector, grouped by exclusion set (a request's vectors share one): each
    # set goes once, as a parameter of its group's scans, where PostgreSQL hashes ``<> ALL``
    # of a constant array. Measured with 500 excluded items and four vectors: per-row arrays
    # (``NOT item_id = ANY(q.ex)`` over a VALUES column, compared element by element for every
    # row the index returned, and sent once per vector) took 2.7-3.9 ms of the server's CPU
    # and 2.2-2.9 ms of the client's, this 1.8-2.0 and 1.0-1.2. Query vectors go in binary: the
    # text literals cost 5% of a for-you request, and a per-row text->vector cast inside the
    # scan had tripled its cost.
    groups: dict[int, tuple[object, list[int]]] = {}
    for i, (_, excluded) in enumerate(queries, start=1):
        groups.setdefault(id(excluded), (excluded, []))[1].append(i)
    with binary_vector_cursor() as cursor:  # the session's settings, once per connection
        fetch = n
        if not _prepare_session(cursor, fetch):
            # An older pgvector: the scan stops at ef_search rows, excluded ones included, so
            # read as many more as are excluded (and let ef_search cover them).
            fetch = n + max(len(ex) for _, ex in queries)
            _prepare_session(cursor, fetch)
    parts, params = [], []
    for excluded, members in groups.values():
        values = ", ".join(f"({i}, %s::vector({dim}))" for i in members)
        parts.append(
            f"SELECT q.i, x.item_id, x.sim FROM (VALUES {values}) AS q(i, v) "
            f"CROSS JOIN LATERAL (SELECT item_id, 1 - ({expr} <=> q.v) AS sim FROM {Item._meta.db_table}"
            f" WHERE vector_dims(embedding) = {dim} AND available AND item_id <> ALL(%s::text[])"
            f" ORDER BY {expr} <=> q.v LIMIT %s) x")
        params += [np.asarray(queries[i - 1][0], dtype=np.float32) for i in members]
        params += [list(excluded), fetch]
    rows = yield (" UNION ALL ".join(parts), params)
    out: list[list[tuple[str, float]]] = [[] for _ in queries]
    for i, item_id, sim in rows:
        out[i - 1].append((item_id, float(sim)))
    # Iterative scans return rows in roughly increasing distance ("relaxed order"): sort.
    return [sorted(found, key=lambda r: (-r[1], r[0]))[:n] for found in out]


class InterestVectors(Strategy):
    """Items near the visitor's interests. ``min_similarity``: the cosine to an interest
    under which an item still scores but is not said to be for that interest (its main
    reason is then another strategy's, or the catalogue's). ``query_min_similarity``: the
    same for a short-term direction made by searches alone (the engine names it by the
    latest search), the search's floor (``services.search.MIN_SIMILARITY``)."""

    id = "content/interests"
    # max_vectors: the strongest interests searched (the short-term direction always is). Each
    # is one HNSW scan (~3 ms at 100k items here), the bulk of a for-you request's time.
    DEFAULT_CONFIG = {"short_term_mix": 0.5, "per_interest": 24, "max_vectors": 3,
                      "min_similarity": INTEREST_MIN_SIMILARITY, "query_min_similarity": 0.45}

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        return self.candidates_many([ctx], n)[0]

    def candidates_many(self, ctxs: list[RequestContext], n: int) -> list[list[Candidate]]:
        """One round trip of HNSW scans for every request's interest vectors."""
        return run_steps(self.candidates_steps(ctxs, n))

    def candidates_steps(self, ctxs: list[RequestContext], n: int) -> Steps:
        per = min(n, int(self.config["per_interest"]))
        queries_of = [self._queries(ctx) for ctx in ctxs]
        found = iter((yield from nearest_items_steps([(vec, ctx.exclude) for ctx, queries in zip(ctxs, queries_of)
                                                      for vec, _, _ in queries], per)))
        return [self._score(ctx, queries, [next(found) for _ in queries], n) for ctx, queries in zip(ctxs, queries_of)]

    def _queries(self, ctx: RequestContext) -> list:
        if ctx.state is None:
            return []
        queries = query_vectors(ctx.state, self.config["short_term_mix"])
        keep = max(1, int(self.config["max_vectors"]))
        if len(queries) > keep:  # the short-term direction (idx None) plus the heaviest interests
            short = [q for q in queries if q[2] is None]
            heavy = sorted((q for q in queries if q[2] is not None), key=lambda q: -q[1])[: keep - len(short)]
            queries = heavy + short
        return queries

    def _score(self, ctx: RequestContext, queries: list, found: list, n: int) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        trail = reasons.engagement_trail(ctx.engagements)
        floor = float(self.config["min_similarity"])
        for (vec, weight, idx), rows in zip(queries, found):
            label = ctx.state.interests[idx].label if idx is not None else ""
            if label:
                # A labelled interest: its label, and the latest engagements that shaped it.
                kind, text = "interest", reasons.render("interest", {"label": label})
                evidence = [{"kind": "interest", "label": label}, *trail]
            else:
                # The short-term direction, or an interest not labelled yet (keyphrases not
                # mined): the newest engagement names it, once the engine has read its title.
                kind, text, evidence = "browsing", reasons.render("browsing_now", {}), trail[:1]
            # No engagement behind a direction: searches made it, and it reads as a search.
            least = floor if evidence else float(self.config["query_min_similarity"])
            for item_id, sim in rows:
                score = weight * max(sim, 0.0)
                cand = out.get(item_id)
                if cand is None:
                    cand = out[item_id] = Candidate(item_id, 0.0)
                cand.score += score
                if sim >= least and not any(r.kind == kind and r.evidence[:1] == evidence[:1] for r in cand.reasons):
                    cand.reasons.append(Reason(self.id, text, interest=idx, kind=kind, evidence=list(evidence)))
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
        text = reasons.render("similar", {"title": row[1]})
        evidence = [reasons.item_evidence(ctx.item_id, title=row[1])]
        return [Candidate(item_id, max(sim, 0.0), [Reason(self.id, text, item_id=ctx.item_id, kind="similar",
                                                          evidence=evidence)])
                for item_id, sim in nearest_items(row[0], n, exclude)]
