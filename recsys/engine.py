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
     "limit": 8, "pool": 4}                               # candidates read = limit * pool
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from . import configcache, ranking, selectors
from .conf import settings
from .models import Item
from .overlap import enabled as overlap_enabled
from .overlap import submit
from .services.interests import visitor_state
from .strategies import registry
from .strategies.base import Candidate, Reason, RequestContext


@dataclass
class Recommendation:
    item_id: str
    title: str
    url: str
    score: float
    reasons: list[Reason] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "url": self.url, "score": round(self.score, 5),
                "reasons": [asdict(r) for r in self.reasons]}


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
    ids = list(dict.fromkeys(item_ids))
    if with_vectors:
        from .services.vectors import binary_vector_cursor

        with binary_vector_cursor() as cursor:
            cursor.execute(sql, [ids], binary=True)
            rows = cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [ids])
            rows = cursor.fetchall()
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
    from .adapters import adapters

    allowed = set(items)
    for adapter in adapters():
        if not adapter.filters and not host_filters:
            continue
        mine = {iid for iid, row in items.items() if row.source == adapter.label()}
        if mine:
            allowed -= mine - adapter.matching_item_ids(mine, host_filters)
    return allowed


def gather(visitor_id: str, conf: dict[str, Any], k: int, context: dict[str, Any] | None = None, *,
           snapshot: dict[str, Any] | None = None):
    """What the fusion of a slot starts from: each strategy's (weight, candidates) for the
    visitor, the excluded items, the effective filters and the pool depth read per strategy.

    ``recommend`` fuses these; the evaluation's weight tuning (``recsys.evaluation.tuning``)
    collects them once per target and re-fuses them offline under other weights.
    """
    snap = snapshot or configcache.snapshot()
    context = clean_context(context)
    overlap = len(slot_strategies(conf)) > 1 and overlap_enabled()
    state = submit(visitor_state, visitor_id, overlap=overlap) if visitor_id else None
    engagements, exclude = selectors.visitor_activity(visitor_id, conf.get("exclude_events", {}))
    recent: list[str] = []
    for e in engagements:
        if e.item_id not in recent:
            recent.append(e.item_id)
    page_item = str(context.get("item_id") or "")
    if page_item:
        exclude.add(page_item)
    category = str(context.get("category") or "")
    ctx = RequestContext(visitor_id=visitor_id, state=state.result() if state is not None else None,
                         item_id=page_item, query=str(context.get("query") or ""), exclude=exclude,
                         recent_items=recent[:20], engagements=engagements, category=category)
    filters = dict(conf.get("filters") or {})
    if category:
        filters["categories"] = [category]
    pool = k * int(conf.get("pool", 4))
    if filters.get("categories") or filters.get("host"):
        pool *= 3  # filters apply after fusion: read deeper so a filtered list still fills
    overrides = conf.get("strategy_config") or {}
    strategies = {sid: (w, build_strategy(sid, overrides.get(sid), snapshot=snap))
                  for sid, w in slot_strategies(conf).items()}
    # Database-bound strategies start first (on the pool when overlapping), then the CPU-bound
    # ones run here while they wait; the fused order does not depend on which finishes first.
    running = {sid: submit(s.candidates, ctx, pool, overlap=overlap)
               for sid, (_, s) in strategies.items() if not s.cpu_bound}
    running.update({sid: submit(s.candidates, ctx, pool, overlap=False)
                    for sid, (_, s) in strategies.items() if s.cpu_bound})
    per_strategy = {sid: (w, running[sid].result()) for sid, (w, _) in strategies.items()}
    return per_strategy, exclude, filters, pool


def recommend(visitor_id: str, slot: str = "for-you", k: int | None = None,
              context: dict[str, Any] | None = None, *, config: dict[str, Any] | None = None) -> RecommendationList:
    """Recommend ``k`` items for a visitor in a slot.

    ``context`` describes the page: ``item_id`` (the item shown: excluded, and a seed for
    "more like this" and co-occurrence), ``query`` (a search just made: embedded and
    matched), ``category`` (a category page: filters the list and drives per-category
    trending). Every item carries its reasons, the main one first.

    ``config`` replaces the slot's live configuration (the admin previews unpublished edits).
    """
    snap = configcache.snapshot()
    conf = config if config is not None else slot_config(slot, visitor_id, snapshot=snap)
    k = int(k or conf.get("limit", 8))
    per_strategy, exclude, filters, pool = gather(visitor_id, conf, k, context, snapshot=snap)
    # Rules, freshness and diversity work on the head of the fused list: the pool.
    fused = ranking.fuse(per_strategy)[:pool]

    rules = list(conf.get("rules") or ())
    pins = [(str(r["item_id"]), int(r.get("position", 0))) for r in rules if r.get("action") == "pin"]
    lam = float(conf.get("diversity", 1.0))
    items = _meta([c.item_id for c in fused] + [p for p, _ in pins], with_vectors=lam < 1.0)
    meta = {iid: row.meta for iid, row in items.items()}

    allowed = {iid for iid, m in meta.items() if iid not in exclude and ranking.passes_filters(m, filters)}
    if filters.get("host") or any(True for _ in _adapters_with_filters()):
        allowed &= _host_allowed({i: items[i] for i in allowed}, filters.get("host") or {})
    ranked = [c for c in fused if c.item_id in allowed]
    ranked = ranking.apply_boosts(ranked, rules, meta)
    fresh = conf.get("freshness") or {}
    ranked = ranking.apply_freshness(ranked, meta, weight=float(fresh.get("weight", 0.0)),
                                     half_life_hours=float(fresh.get("half_life_hours", 72.0)), now=timezone.now())
    ranked = ranking.mmr(ranked, {i: m.vector for i, m in meta.items()}, lam, k)
    ranked = ranking.apply_pins(ranked, pins, allowed)[:k]
    recs = [Recommendation(c.item_id, items[c.item_id].title, items[c.item_id].url, c.score, c.reasons)
            for c in ranked]
    return RecommendationList(id=uuid.uuid4().hex, slot=slot, visitor_id=visitor_id, items=recs)


def _adapters_with_filters():
    from .adapters import adapters

    return (a for a in adapters() if a.filters)
