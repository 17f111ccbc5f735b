"""collaborative/co-occurrence: items associated with what the visitor just engaged with."""
from __future__ import annotations

from .. import association_model as am
from .. import neighbours, reasons, selectors
from .base import Candidate, Reason, RequestContext, Steps, Strategy, run_steps


class CoOccurrence(Strategy):
    """Scores items by their association (``ItemAssociation``, learned from everyone's
    sessions and carts) with the visitor's recent items, each seed weighted by how strongly
    and how recently the visitor engaged with it. The item on the page, when given, is the
    strongest seed ("people who watched this went on to watch ...").

    Reason: "Because you viewed <the seed item that contributed most>" (the event's template in
    ``recsys.reasons``), with that engagement as its evidence.
    """

    id = "collaborative/co-occurrence"
    DEFAULT_CONFIG = {
        "max_seeds": 10,  # the visitor's items used as seeds (strongest first)
        "neighbours": 50,  # associated items read per seed
        "recency": 1.0,  # seed weight /= recency rank ** this
        # Templates by event name ("page": the item on the page), over the site's reason
        # templates (LIVEREC["REASONS"]); empty: the site's templates alone.
        "reasons": {},
    }

    def seeds(self, ctx: RequestContext) -> dict[str, float]:
        weights = am.visitor_item_weights(ctx.engagements, recency=float(self.config["recency"]))
        top = dict(sorted(weights.items(), key=lambda kv: -kv[1])[: int(self.config["max_seeds"])])
        if ctx.item_id:
            top[ctx.item_id] = max([1.0, *top.values()]) * 2.0
        return top

    def candidates(self, ctx: RequestContext, n: int) -> list[Candidate]:
        return self.candidates_many([ctx], n)[0]

    def candidates_many(self, ctxs: list[RequestContext], n: int) -> list[list[Candidate]]:
        """One association read for the union of every request's seeds; each request then
        scores against its own seeds' rows, scaled as a read of those seeds alone."""
        return run_steps(self.candidates_steps(ctxs, n))

    def candidates_steps(self, ctxs: list[RequestContext], n: int) -> Steps:
        seeds_of = [self.seeds(ctx) for ctx in ctxs]
        per_item = int(self.config["neighbours"])
        # Seeds read in the last few seconds come from this process's cache (recsys.neighbours);
        # the read, when one is left, is of the others only.
        rows, titles, missing = neighbours.split(sorted({a for seeds in seeds_of for a in seeds}), per_item)
        if missing:
            read, read_titles = selectors.association_keys_from(
                (yield selectors.association_keys_read(missing, per_item)))
            read = selectors.seed_weights(read)
            neighbours.put(missing, per_item, read, read_titles)
            rows.update(read)
            titles.update(read_titles)
        return [self._rank(ctx, seeds, {a: rows[a] for a in seeds if a in rows}, titles, n) if seeds else []
                for ctx, seeds in zip(ctxs, seeds_of)]

    def _rank(self, ctx: RequestContext, seeds: dict[str, float], rows: dict[str, tuple], titles: dict[str, str],
              n: int) -> list[Candidate]:
        """``rows``: {seed: (its top key, its pairs' weights)} (``selectors.seed_weights``)."""
        if not rows:
            return []
        # Pairs relative to the strongest pair of this request's seeds: one factor per seed,
        # folded into the seed's weight (the score is sum seed_weight * pair_weight).
        top = max(seed_top for seed_top, _ in rows.values())
        scaled = {a: w * selectors.relative_scale(rows[a][0], top) for a, w in seeds.items() if a in rows}
        scored = am.score_candidates(scaled, {a: pairs for a, (_, pairs) in rows.items()}, ctx.exclude)
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]
        last_name = {}
        for e in ctx.engagements:  # newest first: keep the strongest engagement per item
            if e.item_id not in last_name or e.weight > last_name[e.item_id].weight:
                last_name[e.item_id] = e
        templates = {**reasons.templates(), **(self.config.get("reasons") or {})}
        out = []
        for item_id, (score, why) in ranked:
            eng = last_name.get(why)
            kind = "page" if why == ctx.item_id else reasons.item_kind(eng.name if eng else "")
            title = titles.get(why) or ""
            text = templates.get(kind, templates["item_viewed"]).format(title=title or why) if title else ""
            evidence = [reasons.item_evidence(why, title=title, event=eng.name if eng and kind != "page" else "",
                                              at=eng.at if eng and kind != "page" else None)]
            out.append(Candidate(item_id, score, [Reason(self.id, text, item_id=why, kind=kind, evidence=evidence)]))
        return out
