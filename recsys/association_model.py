"""Item-to-item association arithmetic: pure functions, no database.

Each engaged item is paired with the items the same visitor engaged with just before it
(their recent window). A pair counts in both directions but more in the order the visitor
went (a -> b when b followed a): "after B, people went on to C" is the signal session-based
recommenders (item-kNN on sessions, Markov chains, GRU4Rec's training pairs) learn from,
and it is what the visitor's *next* step looks like. Nearer steps count more (1/gap).

Time decay uses *forward decay* (Cormode et al., "Forward decay", ICDE 2009): a pair's
weight is kept as ``log_key = ln(w) + t * ln2 / half_life`` anchored at a fixed epoch, so
adding a new observation is a log-sum-exp, any batching of the log yields the same keys,
and ordering pairs by ``log_key`` orders them by their decayed weight at *any* time:
the neighbours of an item are read with an index scan, never by decaying rows at read time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

LN2 = math.log(2.0)
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass
class Engagement:
    item_id: str
    weight: float  # the event type's weight (LIVEREC["EVENT_WEIGHTS"]); positive only
    at: datetime
    name: str = ""  # the event name, for the reason text ("Because you bought ...")


@dataclass
class Window:
    """A visitor's recent engagements, most recent last, bounded in items and time."""

    max_items: int
    max_age_hours: float
    entries: list[Engagement] = field(default_factory=list)

    def earlier(self, at: datetime) -> list[Engagement]:
        """Distinct items engaged within the time window before ``at``, most recent first,
        each with its strongest engagement."""
        seen: dict[str, Engagement] = {}
        order: list[str] = []
        for e in reversed(self.entries):
            if abs((at - e.at).total_seconds()) > self.max_age_hours * 3600:
                continue
            prev = seen.get(e.item_id)
            if prev is None:
                seen[e.item_id] = e
                order.append(e.item_id)
            elif e.weight > prev.weight:
                seen[e.item_id] = e
            if len(order) >= self.max_items:
                break
        return [seen[i] for i in order]

    def push(self, e: Engagement) -> None:
        self.entries.append(e)
        # Keep enough raw entries for max_items distinct ones in the common case.
        if len(self.entries) > self.max_items * 3:
            del self.entries[: len(self.entries) - self.max_items * 3]


def pair_deltas(window: Window, e: Engagement, *, backward: float) -> list[tuple[str, str, float]]:
    """The (item_a, item_b, weight) increments one engagement adds, given the window before it.

    ``a -> b`` gets ``sqrt(w_a * w_b) / gap`` when b follows a (gap 1 = the step just before),
    ``b -> a`` gets ``backward`` times that. The geometric mean makes a purchase after a view
    count more than two views, and two purchases most.
    """
    out: list[tuple[str, str, float]] = []
    gap = 0
    for prev in window.earlier(e.at):
        if prev.item_id == e.item_id:
            continue
        gap += 1
        w = math.sqrt(prev.weight * e.weight) / gap
        out.append((prev.item_id, e.item_id, w))
        if backward > 0:
            out.append((e.item_id, prev.item_id, backward * w))
    return out


def log_key(weight: float, at: datetime, half_life_hours: float) -> float:
    """Forward-decay key of ``weight`` observed at ``at``."""
    return math.log(weight) + (at - EPOCH).total_seconds() / 3600.0 * LN2 / half_life_hours


def log_add(a: float | None, b: float) -> float:
    """ln(exp(a) + exp(b)), stable."""
    if a is None:
        return b
    hi, lo = (a, b) if a >= b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def decayed(key: float, at: datetime, half_life_hours: float) -> float:
    """The weight a key stands for at time ``at`` (may underflow to 0 for very old pairs)."""
    exponent = key - (at - EPOCH).total_seconds() / 3600.0 * LN2 / half_life_hours
    return math.exp(exponent) if exponent > -700 else 0.0


def visitor_item_weights(engagements: list[Engagement], *, recency: float = 1.0) -> dict[str, float]:
    """How much each of a visitor's items should pull its associations: the strongest
    engagement with it, divided by its recency rank (1 = most recently touched) to the
    power ``recency``. ``engagements`` in any order."""
    best: dict[str, float] = {}
    last: dict[str, datetime] = {}
    for e in engagements:
        if e.weight <= 0:
            continue
        best[e.item_id] = max(best.get(e.item_id, 0.0), e.weight)
        if e.item_id not in last or e.at > last[e.item_id]:
            last[e.item_id] = e.at
    ranked = sorted(last, key=lambda i: last[i], reverse=True)
    return {item: best[item] / (rank + 1) ** recency for rank, item in enumerate(ranked)}


def score_candidates(seeds: dict[str, float], neighbours: dict[str, list[tuple[str, float]]],
                     exclude: set[str]) -> dict[str, tuple[float, str]]:
    """Score = sum over seed items s of seed_weight(s) * association(s -> c).

    Returns {candidate: (score, the seed item that contributed most)}; seeds themselves
    may be candidates (re-engaging with an earlier item is a real next step) unless excluded.
    """
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for seed, sw in seeds.items():
        for cand, w in neighbours.get(seed, ()):
            if cand in exclude or cand == seed:
                continue
            contrib = sw * w
            scores[cand] = scores.get(cand, 0.0) + contrib
            if cand not in best or contrib > best[cand][0]:
                best[cand] = (contrib, seed)
    return {c: (s, best[c][1]) for c, s in scores.items()}
