"""The recommendation engine: strategies -> normalised fusion -> rules -> diversity -> list with reasons.

A slot's configuration (``LIVEREC["SLOTS"]`` entry, or its newest published ``SlotConfig``)::

    {"strategies": {"content/interests": 1.0, ...},      # strategy id -> fusion weight
     "if_registered": {"sequential/next-item": 1.0},     # used only when that plugin is installed
     "exclude_events": {"purchased": None, "item_viewed": 3600},  # forever / seconds, per event
     "filters": {"available": True, "categories": [...], "host": {"<lookup>": value}},
     "rules": [{"action": "boost" | "bury", "item_ids": [...], "categories": [...], "factor": 1.5},
               {"action": "pin", "item_id": "42", "position": 0}],
     "freshness": {"weight": 0.1, "half_life_hours": 72},
     "diversity": 0.8,                                    # MMR lambda (1 = relevance only)
     "limit": 8, "pool": 4,                               # candidates read = limit * pool
     "fill": True}                                        # False: a short list stays short (no fallback)
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from tracking.models import Event

from . import configcache, fallback, ranking, reasons, selectors
from .adapters import adapters
from .conf import settings
from .cycletrace import span
from .models import Item
from .overlap import enabled as overlap_enabled
from .overlap import submit
from .services.interests import visitor_snapshots
from .services.vectors import fetch_binary
from .strategies import registry
from .strategies.base import Candidate, Reason, RequestContext, run_together


@dataclass
class Recommendation:
    item_id: str
    title: str
    url: str
    score: float
    reasons: list[Reason] = field(default_factory=list)

    @property
    def has_trail(self) -> bool:
        """Whether a reason names evidence for the "Why?" trail (the widget shows it then)."""
        return any(ev.get("text") for r in self.reasons for ev in r.evidence)

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "url": self.url, "score": round(self.score, 5),
                "reasons": [r.as_dict() for r in self.reasons]}


@dataclass
class RecommendationList:
    id: str
    slot: str
    visitor_id: str
    items: list[Recommendation]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slot": self.slot, "items": [r.as_dict() for r in self.items]}

    def signature(self) -> tuple[str, ...]:
        return tuple(r.item_id for r in self.items)


#: The page context every surface accepts (Python API, JSON endpoint, template tag).
CONTEXT_KEYS = ("item_id", "query", "category")


def clean_context(values: dict[str, Any] | None) -> dict[str, str]:
    """The known context keys with non-empty values, as bounded strings."""
    return {key: str(values[key])[:256] for key in CONTEXT_KEYS if values and values.get(key) not in (None, "")}


def slot_config(slot: str, visitor_id: str | None = None, *, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    """The live configuration of a slot: the visitor's arm of a running experiment on the slot,
    else its newest active published version, else settings."""
    if visitor_id:
        arm = selectors.experiment_slot_config(slot, visitor_id, snapshot=snapshot)
        if arm is not None:
            return arm
    published = (snapshot or configcache.snapshot())["slots"].get(slot)
    if published is not None:
        return published
    slots = settings.SLOTS
    if slot not in slots:
        raise ImproperlyConfigured(f"unknown slot {slot!r}; LIVEREC['SLOTS'] defines {sorted(slots)}")
    return slots[slot]


def slot_strategies(conf: dict[str, Any]) -> dict[str, float]:
    """The slot's strategy weights, plus its ``if_registered`` ones whose plugin is installed."""
    weights = {sid: float(w) for sid, w in conf["strategies"].items()}
    installed = set(registry.ids())
    for sid, w in (conf.get("if_registered") or {}).items():
        if sid in installed:
            weights.setdefault(sid, float(w))
    return weights


def build_strategy(strategy_id: str, override: dict[str, Any] | None = None, *,
                   snapshot: dict[str, Any] | None = None):
    """A strategy instance with its staff tuning merged over DEFAULT_CONFIG, then the slot's
    per-strategy ``override`` (a slot config's ``strategy_config`` entry) over that."""
    tuning = (snapshot or configcache.snapshot())["tuning"].get(strategy_id) or {}
    return registry.get(strategy_id)({**tuning, **(override or {})})


def _fuse(per_strategy: dict[str, tuple[float, list[Candidate]]]) -> list[Candidate]:
    return ranking.fuse(per_strategy)


@dataclass
class _Row:
    title: str
    url: str
    source: str
    meta: ranking.ItemMeta


def _meta(item_ids: list[str], with_vectors: bool) -> dict[str, _Row]:
    """Catalogue rows of the candidates, with unit embeddings when MMR needs them.

    Embeddings are read in pgvector's binary format straight into NumPy: parsing the text
    form cost 0.3 ms per 384-d vector under load here, ~10 ms for a 32-item pool.
    """
    if not item_ids:
        return {}
    sql = (f"SELECT item_id, title, url, source, categories, available, created_at, "
           f"{'embedding' if with_vectors else 'NULL::vector'} FROM {Item._meta.db_table} WHERE item_id = ANY(%s)")
    rows = fetch_binary(sql, [list(dict.fromkeys(item_ids))])
    out = {}
    for item_id, title, url, source, categories, available, created_at, emb in rows:
        vec = None
        if emb is not None:
            v = np.asarray(emb.to_numpy() if hasattr(emb, "to_numpy") else emb, dtype=np.float32)
            n = float(np.linalg.norm(v))
            vec = v / n if n > 1e-12 else None
        out[item_id] = _Row(title, url, source, ranking.ItemMeta(item_id, list(categories or []), available,
                                                                 created_at, vec))
    return out


def _host_allowed(items: dict[str, _Row], host_filters: dict[str, Any]) -> set[str]:
    """Item ids whose host object passes its adapter's ``filters`` and the slot's ``host`` lookups."""
    allowed = set(items)
    for adapter in adapters():
        if not adapter.filters and not host_filters:
            continue
        mine = {iid for iid, row in items.items() if row.source == adapter.label()}
        if mine:
            allowed -= mine - adapter.matching_item_ids(mine, host_filters)
    return allowed


@dataclass
class _Request:
    visitor_id: str
    slot: str
    conf: dict[str, Any]
    k: int
    context: dict[str, str]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def gather(visitor_id: str, conf: dict[str, Any], k: int, context: dict[str, Any] | None = None, *,
           snapshot: dict[str, Any] | None = None):
    """What the fusion of a slot starts from: each strategy's (weight, candidates) for the
    visitor, the excluded items, the effective filters and the pool depth read per strategy.

    ``recommend`` fuses these; the evaluation's weight tuning (``recsys.evaluation.fusion_search``)
    collects them once per target and re-fuses them offline under other weights.
    """
    return _gather_many([_Request(visitor_id, "", conf, k, clean_context(context))],
                        snapshot or configcache.snapshot())[0]


def _gather_many(requests: list[_Request], snap: dict[str, Any], known: dict[str, tuple] | None = None):
    """``gather`` for many requests at once: each read is one round trip for all of them (the
    visitors' profiles, their recent activity, each strategy's candidates), which is what a
    realtime worker refreshing the dozens of visitors a fold touched spends its time on.
    ``known``: snapshots the caller holds (``recommend_many``), not read again."""
    overlap = any(len(slot_strategies(r.conf)) > 1 for r in requests) and overlap_enabled()
    known = known or {}
    visitors = sorted({r.visitor_id for r in requests if r.visitor_id and r.visitor_id not in known})
    profiles = submit(_spanned("e:profiles", visitor_snapshots), visitors, overlap=overlap) if visitors else None
    rules_of = [_key(r.conf.get("exclude_events", {})) for r in requests]
    by_rules: dict[str, set[str]] = {}
    for r, rules in zip(requests, rules_of):
        if r.visitor_id:
            by_rules.setdefault(rules, set()).add(r.visitor_id)
    with span("e:activity"):
        activity = {(rules, v): got for rules, vs in by_rules.items()
                    for v, got in selectors.visitor_activity_many(sorted(vs), json.loads(rules)).items()}
    snapshots = {**known, **(profiles.result() if profiles is not None else {})}

    ctxs, pools, filters_of = [], [], []
    for r, rules in zip(requests, rules_of):
        engagements, exclude = activity.get((rules, r.visitor_id), ([], set()))
        exclude = set(exclude)  # each request's own: the page item joins it below
        recent: list[str] = []
        for e in engagements:
            if e.item_id not in recent:
                recent.append(e.item_id)
        page_item = str(r.context.get("item_id") or "")
        if page_item:
            exclude.add(page_item)
        category = str(r.context.get("category") or "")
        state, sequence = snapshots.get(r.visitor_id, (None, None))
        ctxs.append(RequestContext(visitor_id=r.visitor_id, state=state, sequence=sequence, item_id=page_item,
                                   query=str(r.context.get("query") or ""), exclude=exclude,
                                   recent_items=recent[:20], engagements=engagements, category=category))
        filters = dict(r.conf.get("filters") or {})
        if category:
            filters["categories"] = [category]
        pool = r.k * int(r.conf.get("pool", 4))
        if filters.get("categories") or filters.get("host"):
            pool *= 3  # filters apply after fusion: read deeper so a filtered list still fills
        pools.append(pool)
        filters_of.append(filters)

    # One strategy call per (strategy, its slot override, pool depth), over all its requests.
    groups: dict[tuple[str, str, int], list[int]] = {}
    for i, r in enumerate(requests):
        overrides = r.conf.get("strategy_config") or {}
        for sid in slot_strategies(r.conf):
            groups.setdefault((sid, _key(overrides.get(sid) or {}), pools[i]), []).append(i)
    strategies = {key: build_strategy(key[0], json.loads(key[1]), snapshot=snap) for key in groups}
    # Database-bound strategies start first (on the pool when overlapping), then the CPU-bound
    # ones run here while they wait; the fused order does not depend on which finishes first.
    database_bound = [key for key, s in strategies.items() if not s.cpu_bound]
    answers: dict[tuple[str, str, int], list[list[Candidate]]] = {}
    running = {}
    if overlap:
        running = {key: submit(_spanned(f"c:{key[0]}", strategies[key].candidates_many), [ctxs[i] for i in groups[key]],
                               key[2], overlap=True)
                   for key in database_bound}
    else:
        # Inline: their reads go together, one round trip per round (``base.run_together``).
        with span("c:database-bound"):
            answers = dict(zip(database_bound, run_together(
                [strategies[key].candidates_steps([ctxs[i] for i in groups[key]], key[2]) for key in database_bound])))
    running.update({key: submit(_spanned(f"c:{key[0]}", s.candidates_many), [ctxs[i] for i in groups[key]], key[2],
                                overlap=False)
                    for key, s in strategies.items() if s.cpu_bound})
    answers.update({key: future.result() for key, future in running.items()})
    found: dict[tuple[str, int], list[Candidate]] = {}
    for key, answer in answers.items():
        for i, cands in zip(groups[key], answer):
            found[(key[0], i)] = cands
    out = []
    for i, r in enumerate(requests):
        per_strategy = {sid: (w, found[(sid, i)]) for sid, w in slot_strategies(r.conf).items()}
        out.append((per_strategy, ctxs[i].exclude, filters_of[i], pools[i]))
    return out


def recommend(visitor_id: str, slot: str = "for-you", k: int | None = None,
              context: dict[str, Any] | None = None, *, config: dict[str, Any] | None = None) -> RecommendationList:
    """Recommend ``k`` items for a visitor in a slot.

    ``context`` describes the page: ``item_id`` (the item shown: excluded, and a seed for
    "more like this" and co-occurrence), ``query`` (a search just made: embedded and
    matched), ``category`` (a category page: filters the list and drives per-category
    trending). Every item carries its reasons, the main one first.

    ``config`` replaces the slot's live configuration (the admin previews unpublished edits).
    """
    return recommend_many([(visitor_id, slot, k, context)], config=config)[0]


def _spanned(name: str, fn):
    """``fn`` timed as ``name`` in the running cycle's trace (``cycletrace.span``), on whichever
    thread it runs."""
    def run(*args):
        with span(name):
            return fn(*args)
    return run


def recommend_many(requests, *, config: dict[str, Any] | None = None,
                   snapshots: dict[str, tuple] | None = None) -> list[RecommendationList]:
    """``recommend`` for many ``(visitor_id, slot, k, context)`` at once, in the same number of
    database round trips as one (see ``_gather_many``); each list is what ``recommend`` gives.

    ``snapshots``: {visitor: (InterestState, sequence state or None)} the caller already holds,
    as ``interests.visitor_snapshots`` would read them (the realtime worker's fold just wrote
    them): those visitors' profiles are not read again.

    ``ImproperlyConfigured`` for an unknown slot, as ``recommend``.
    """
    snap = configcache.snapshot()
    reqs = []
    for visitor_id, slot, k, context in requests:
        conf = config if config is not None else slot_config(slot, visitor_id, snapshot=snap)
        reqs.append(_Request(visitor_id, slot, conf, int(k or conf.get("limit", 8)), clean_context(context)))
    gathered = _gather_many(reqs, snap, snapshots)
    # Rules, freshness and diversity work on the head of each fused list: the pool.
    fused_lists = [ranking.fuse(per_strategy)[:pool] for per_strategy, _, _, pool in gathered]
    pins_of = [[(str(x["item_id"]), int(x.get("position", 0))) for x in (r.conf.get("rules") or ()) if x.get("action") == "pin"]
               for r in reqs]
    wanted = [c.item_id for fused in fused_lists for c in fused] + [p for pins in pins_of for p, _ in pins]
    with_vectors = any(float(r.conf.get("diversity", 1.0)) < 1.0 for r in reqs)
    with span("e:meta"):
        items = _meta(wanted, with_vectors=with_vectors)
    # Never an empty widget: a list the strategies leave short is completed from the
    # fallback chain (recsys.fallback), whose items follow the strategies' own; except in a
    # slot with "fill": False (search results: a popular film is not a match).
    for r, fused, (_, exclude, filters, _) in zip(reqs, fused_lists, gathered):
        usable = [c for c in fused if c.item_id not in exclude and ranking.passes_filters(
            items[c.item_id].meta if c.item_id in items else None, filters)]
        if len(usable) < r.k and r.conf.get("fill", True):
            with span("e:fallback"):
                below = min((c.score for c in usable), default=1.0) or 1.0
                extra = fallback.candidates(r.k - len(usable) + r.k, exclude | {c.item_id for c in usable},
                                            filters, below=below)
                items.update(_meta([c.item_id for c in extra if c.item_id not in items], with_vectors=with_vectors))
                fused.extend(extra)
    lists = [_finish(r, fused, exclude, filters, pins, items)
             for r, fused, (_, exclude, filters, _), pins in zip(reqs, fused_lists, gathered, pins_of)]
    with span("e:explain"):
        _explain(lists)
    return lists


def _latest_searches(visitor_ids: list[str]) -> dict[str, tuple[str, Any]]:
    """{visitor: (their latest search's query, its time)}: one indexed read per visitor."""
    table = Event._meta.db_table
    rows = fetch_binary(
        f"SELECT q.v, s.query, s.occurred_at FROM unnest(%s::text[]) AS q(v) CROSS JOIN LATERAL ("
        f" SELECT properties->>'query' AS query, occurred_at FROM {table} WHERE visitor_id = q.v AND name = 'searched'"
        f" AND NOT is_bot AND coalesce(properties->>'query', '') <> '' ORDER BY occurred_at DESC, id DESC LIMIT 1) s",
        [visitor_ids])
    return {v: (query, at) for v, query, at in rows}


#: Reason kinds whose strategy gives a placeholder text: the engine names their evidence.
_NAMED_BY_ENGINE = frozenset({"browsing"})


def _explain(lists: list[RecommendationList]) -> None:
    """Fill in the titles of the items reasons name, and the texts strategies left to the
    engine (a reason whose evidence had no title when it was made); a reason that still names
    nothing is dropped, and an item left without one reads as from the catalogue."""
    untitled = {ev["item_id"] for recs in lists for rec in recs.items for r in rec.reasons for ev in r.evidence
                if ev.get("kind") == "item" and not ev.get("title")}
    titles = dict(Item.objects.filter(item_id__in=untitled).values_list("item_id", "title")) if untitled else {}
    # A short-term direction with no item behind it was made by searches: the latest names it.
    searchers = sorted({recs.visitor_id for recs in lists for rec in recs.items for r in rec.reasons
                        if r.kind in _NAMED_BY_ENGINE and not r.evidence and recs.visitor_id})
    searches = _latest_searches(searchers) if searchers else {}
    for recs in lists:
        for rec in recs.items:
            for r in rec.reasons:
                if r.kind in _NAMED_BY_ENGINE and not r.evidence and recs.visitor_id in searches:
                    query, at = searches[recs.visitor_id]
                    r.kind = "search"
                    r.evidence = [{"kind": "query", "query": query, "at": at.isoformat()}]
                    r.text = ""
                for ev in r.evidence:
                    if ev.get("kind") == "item" and not ev.get("title"):
                        ev["title"] = titles.get(ev["item_id"], "")
                if r.kind and (not r.text or r.kind in _NAMED_BY_ENGINE):
                    named = next((ev for ev in r.evidence if ev.get("title") or ev.get("query") or ev.get("label")), None)
                    if named is not None:
                        r.text = reasons.render(r.kind, named)
            rec.reasons = [r for r in rec.reasons if r.text]
            for r in rec.reasons:
                for ev in r.evidence:
                    ev["text"] = reasons.trail_text(ev)
            if not rec.reasons:
                rec.reasons = [Reason("fallback/catalogue", reasons.render("catalogue", {}), kind="catalogue",
                                      evidence=[{"kind": "catalogue"}])]


def _finish(r: _Request, fused: list[Candidate], exclude: set[str], filters: dict[str, Any],
            pins: list[tuple[str, int]], items: dict[str, _Row]) -> RecommendationList:
    """Filters, rules, freshness, diversity and pins over one request's fused pool."""
    mine = {c.item_id for c in fused} | {p for p, _ in pins}
    meta = {iid: items[iid].meta for iid in mine if iid in items}
    allowed = {iid for iid, m in meta.items() if iid not in exclude and ranking.passes_filters(m, filters)}
    if filters.get("host") or any(True for _ in _adapters_with_filters()):
        allowed &= _host_allowed({i: items[i] for i in allowed}, filters.get("host") or {})
    rules = list(r.conf.get("rules") or ())
    ranked = [c for c in fused if c.item_id in allowed]
    ranked = ranking.apply_boosts(ranked, rules, meta)
    fresh = r.conf.get("freshness") or {}
    ranked = ranking.apply_freshness(ranked, meta, weight=float(fresh.get("weight", 0.0)),
                                     half_life_hours=float(fresh.get("half_life_hours", 72.0)), now=timezone.now())
    lam = float(r.conf.get("diversity", 1.0))
    ranked = ranking.mmr(ranked, {i: m.vector for i, m in meta.items()}, lam, r.k)
    ranked = ranking.apply_pins(ranked, pins, allowed)[:r.k]
    recs = [Recommendation(c.item_id, items[c.item_id].title, items[c.item_id].url, c.score, c.reasons)
            for c in ranked]
    return RecommendationList(id=uuid.uuid4().hex, slot=r.slot, visitor_id=r.visitor_id, items=recs)


def _adapters_with_filters():
    return (a for a in adapters() if a.filters)
