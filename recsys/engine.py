"""The recommendation engine: strategies -> normalised fusion -> rules -> ranked list with reasons."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import selectors
from .conf import settings
from .diversity import mmr
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


def slot_config(slot: str, visitor_id: str | None = None) -> dict[str, Any]:
    """The live configuration of a slot: the visitor's arm of a running experiment on the slot,
    else its newest active published version, else settings."""
    if visitor_id:
        arm = selectors.experiment_slot_config(slot, visitor_id)
        if arm is not None:
            return arm
    published = selectors.published_slot_config(slot)
    if published is not None:
        return published
    slots = settings.SLOTS
    if slot not in slots:
        raise ImproperlyConfigured(f"unknown slot {slot!r}; LIVEREC['SLOTS'] defines {sorted(slots)}")
    return slots[slot]


def build_strategy(strategy_id: str, override: dict[str, Any] | None = None):
    """A strategy instance with its staff tuning merged over DEFAULT_CONFIG, then the slot's
    per-strategy ``override`` (a slot config's ``strategy_config`` entry) over that."""
    return registry.get(strategy_id)({**selectors.strategy_tuning(strategy_id), **(override or {})})


def _fuse(per_strategy: dict[str, tuple[float, list[Candidate]]]) -> list[Candidate]:
    """Max-normalise each strategy's scores to [0, 1], then weighted sum; reasons merged."""
    fused: dict[str, Candidate] = {}
    for sid, (weight, cands) in per_strategy.items():
        if not cands:
            continue
        top = max(c.score for c in cands) or 1.0
        for c in cands:
            f = fused.get(c.item_id)
            if f is None:
                f = fused[c.item_id] = Candidate(c.item_id, 0.0)
            f.score += weight * c.score / top
            f.reasons.extend(c.reasons)
    return sorted(fused.values(), key=lambda c: (-c.score, c.item_id))


def recommend(visitor_id: str, slot: str = "for-you", k: int | None = None,
              context: dict[str, Any] | None = None, *, config: dict[str, Any] | None = None) -> RecommendationList:
    """Recommend ``k`` items for a visitor in a slot. ``context``: {"item_id", "query"}.

    ``config`` replaces the slot's live configuration (the admin previews unpublished edits).
    """
    conf = config if config is not None else slot_config(slot, visitor_id)
    k = int(k or conf.get("limit", 8))
    context = context or {}
    exclude = selectors.excluded_items(visitor_id, conf.get("exclude_events", {}))
    if context.get("item_id"):
        exclude.add(str(context["item_id"]))
    ctx = RequestContext(visitor_id=visitor_id, state=visitor_state(visitor_id), item_id=str(context.get("item_id", "")),
                         query=str(context.get("query", "")), exclude=exclude,
                         recent_items=selectors.recent_items(visitor_id))
    per_strategy = {}
    for sid, weight in conf["strategies"].items():
        strategy = build_strategy(sid, conf.get("strategy_config", {}).get(sid))
        per_strategy[sid] = (float(weight), strategy.candidates(ctx, k * 3))
    ranked = mmr(_fuse(per_strategy), k, float(conf.get("diversity", 0.0)))
    items = selectors.items_by_id([c.item_id for c in ranked])
    recs = [Recommendation(c.item_id, items[c.item_id].title, items[c.item_id].url, c.score, c.reasons)
            for c in ranked if c.item_id in items]
    return RecommendationList(id=uuid.uuid4().hex, slot=slot, visitor_id=visitor_id, items=recs)
