"""Ranking arithmetic for the engine: fusion, rules, freshness and MMR diversity.

Pure functions over candidates and plain item metadata (no database), so each step is
tested alone and the engine is the only place that reads the database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import numpy as np

from .strategies.base import Candidate, Reason


@dataclass
class ItemMeta:
    """What the rules need to know about a candidate item."""

    item_id: str
    categories: list[str] = field(default_factory=list)
    available: bool = True
    created_at: datetime | None = None
    vector: np.ndarray | None = None  # unit-length embedding, for MMR


def fuse(per_strategy: dict[str, tuple[float, list[Candidate]]]) -> list[Candidate]:
    """Max-normalise each strategy's scores to [0, 1], then sum them with the slot's weights.

    Each fused candidate keeps the reasons of every strategy that proposed it, the largest
    contribution first, so the first reason is the main one. Ties break on item id
    (deterministic lists, so unchanged lists are not pushed again).
    """
    fused: dict[str, Candidate] = {}
    contrib: dict[str, list[tuple[float, int, Reason]]] = {}
    order = 0
    for sid, (weight, cands) in per_strategy.items():
        if not cands or weight <= 0:
            continue
        top = max(c.score for c in cands)
        if top <= 0:
            continue
        for c in cands:
            part = weight * max(c.score, 0.0) / top
            f = fused.get(c.item_id)
            if f is None:
                f = fused[c.item_id] = Candidate(c.item_id, 0.0)
            f.score += part
            for r in c.reasons:
                order += 1
                contrib.setdefault(c.item_id, []).append((part, order, r))
    for item_id, parts in contrib.items():
        parts.sort(key=lambda p: (-p[0], p[1]))
        fused[item_id].reasons = [r for _, _, r in parts]
    return sorted(fused.values(), key=lambda c: (-c.score, c.item_id))


def _matches(rule: dict[str, Any], meta: ItemMeta | None, item_id: str) -> bool:
    if item_id in {str(i) for i in rule.get("item_ids", ())}:
        return True
    cats = set(rule.get("categories", ()))
    return bool(cats and meta is not None and cats & set(meta.categories))


def passes_filters(meta: ItemMeta | None, filters: dict[str, Any]) -> bool:
    """Slot filters: {"available": True (default), "categories": [...] (any of)}.

    An item the catalogue does not know fails: it cannot be shown with a title or link.
    """
    if meta is None:
        return False
    if filters.get("available", True) and not meta.available:
        return False
    cats = filters.get("categories")
    if cats and not set(cats) & set(meta.categories):
        return False
    return True


def apply_boosts(cands: list[Candidate], rules: Iterable[dict[str, Any]], meta: dict[str, ItemMeta]) -> list[Candidate]:
    """``boost`` multiplies matching scores by ``factor`` (default 1.5); ``bury`` by
    ``factor`` (default 0.1) -- buried items still fill the list when nothing else does."""
    rules = [r for r in rules if r.get("action") in ("boost", "bury")]
    if rules:
        for c in cands:
            for r in rules:
                if _matches(r, meta.get(c.item_id), c.item_id):
                    c.score *= float(r.get("factor", 1.5 if r["action"] == "boost" else 0.1))
    return sorted(cands, key=lambda c: (-c.score, c.item_id))


def apply_freshness(cands: list[Candidate], meta: dict[str, ItemMeta], *, weight: float, half_life_hours: float,
                    now: datetime) -> list[Candidate]:
    """Multiply each score by ``1 + weight * 0.5 ** (age / half_life)``: a new item gets up to
    ``weight`` extra, fading with its age; a relative boost, so a poor match stays poor."""
    if weight <= 0 or half_life_hours <= 0:
        return cands
    for c in cands:
        m = meta.get(c.item_id)
        if m is not None and m.created_at is not None:
            age = max(0.0, (now - m.created_at).total_seconds() / 3600.0)
            c.score *= 1.0 + weight * 0.5 ** (age / half_life_hours)
    return sorted(cands, key=lambda c: (-c.score, c.item_id))


def mmr(cands: list[Candidate], vectors: dict[str, np.ndarray | None], lam: float, k: int) -> list[Candidate]:
    """Maximal Marginal Relevance (Carbonell & Goldstein 1998): pick greedily the item that
    maximises ``lam * relevance - (1 - lam) * max cosine to the items already picked``.

    Relevance is the score over the best score (so ``lam`` means the same in every slot);
    ``lam = 1`` keeps the order; items without a vector count as dissimilar to everything.
    """
    if not cands:
        return []
    if lam >= 1.0 or len(cands) <= 1:
        return cands[:k]
    top = max(c.score for c in cands) or 1.0
    rel = np.array([c.score / top for c in cands], dtype=np.float64)
    dim = next((v.shape[0] for v in vectors.values() if v is not None), 0)
    mat = np.zeros((len(cands), max(dim, 1)), dtype=np.float32)
    for i, c in enumerate(cands):
        v = vectors.get(c.item_id)
        if v is not None and v.shape[0] == dim:
            mat[i] = v
    sims = mat @ mat.T
    max_sim = np.full(len(cands), -np.inf)
    picked: list[int] = []
    remaining = np.ones(len(cands), dtype=bool)
    while len(picked) < min(k, len(cands)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lam * rel - (1.0 - lam) * penalty
        value[~remaining] = -np.inf
        i = int(np.argmax(value))  # ties: the earlier (higher-scored) candidate
        picked.append(i)
        remaining[i] = False
        max_sim = np.maximum(max_sim, sims[i])
    return [cands[i] for i in picked]


def apply_pins(ranked: list[Candidate], pins: list[tuple[str, int]], allowed: set[str]) -> list[Candidate]:
    """Put each pinned item (that passed exclusions and filters) at its position (0-based).

    The list keeps its length: a pin displaces the tail, not the head.
    """
    k = len(ranked)
    pinned = [(pos, item_id) for item_id, pos in pins if item_id in allowed]
    if not pinned:
        return ranked
    ids = {item_id for _, item_id in pinned}
    existing = {c.item_id: c for c in ranked}
    rest = [c for c in ranked if c.item_id not in ids]
    for pos, item_id in sorted(pinned):
        cand = existing.get(item_id) or Candidate(item_id, 0.0)
        cand.reasons = [Reason("rules/pin", "Featured"), *cand.reasons]
        rest.insert(min(max(0, int(pos)), len(rest)), cand)
    return rest[: max(k, len(pinned))]
