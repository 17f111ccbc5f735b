"""The interest model's arithmetic: pure functions over NumPy, no database.

State per visitor: a long-term and a short-term decayed sum of engaged embeddings,
up to K interest centroids (online clustering in the spirit of ComiRec/MIND, so two
unrelated tastes stay apart instead of averaging), and a Poisson activity rate.
All times come from events (``occurred_at``), never the wall clock, so replaying
the log reproduces the state exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

# A new engagement joins the nearest centroid when cosine >= this, else starts a new
# interest (while fewer than K exist). 0.45 separates MiniLM genre clusters in ML-100K.
JOIN_THRESHOLD = 0.45
MAX_INTERESTS = 4
# Horizon of the activity-rate estimate (hours).
RATE_HORIZON_HOURS = 24.0
# A search replaces most of the session context at once: the short-term vector keeps
# this share of its previous size, and the query gets the size of the whole session.
SEARCH_KEEP = 0.25


def decay_factor(dt_hours: float, half_life_hours: float) -> float:
    if dt_hours <= 0 or half_life_hours <= 0:
        return 1.0
    return 0.5 ** (dt_hours / half_life_hours)


@dataclass
class Interest:
    vector: np.ndarray  # decayed weighted sum of member embeddings
    weight: float
    label: str = ""

    def direction(self) -> np.ndarray:
        n = float(np.linalg.norm(self.vector))
        return self.vector / n if n > 1e-12 else self.vector


@dataclass
class InterestState:
    long_term: np.ndarray | None = None
    short_term: np.ndarray | None = None
    interests: list[Interest] = field(default_factory=list)
    rate_per_hour: float = 0.0
    last_event_at: datetime | None = None
    event_count: int = 0


def apply(state: InterestState, vec: np.ndarray | None, weight: float, at: datetime, *,
          long_half_life: float, short_half_life: float, max_interests: int = MAX_INTERESTS,
          search: bool = False) -> InterestState:
    """Fold one engagement (embedding ``vec`` with signed ``weight``) into the state, in place.

    ``search=True``: ``vec`` is a query embedding; it moves the short-term vector at once
    (the visitor just said what they want now) and the long-term one like any engagement,
    but forms no interest centroid (a query is intent, not taste shown on an item).
    Negative weights (not interested, a quick bounce) push every vector away.
    Cost: O(K * dim) NumPy work, no history read (microseconds).
    """
    dt = 0.0
    if state.last_event_at is not None:
        dt = max(0.0, (at - state.last_event_at).total_seconds() / 3600.0)
    # Poisson rate: exponentially weighted event count over the horizon.
    state.rate_per_hour = state.rate_per_hour * math.exp(-dt / RATE_HORIZON_HOURS) + 1.0 / RATE_HORIZON_HOURS
    # Very active visitors move faster: their short-term memory is scaled down by their
    # rate (more events per hour carry more evidence per unit of time).
    short_hl = short_half_life / max(1.0, math.sqrt(state.rate_per_hour * RATE_HORIZON_HOURS / 24.0))
    d_long = decay_factor(dt, long_half_life)
    d_short = decay_factor(dt, short_hl)
    state.last_event_at = at if state.last_event_at is None or at > state.last_event_at else state.last_event_at
    state.event_count += 1
    if vec is None or weight == 0:
        if state.long_term is not None:
            state.long_term = state.long_term * d_long
            state.short_term = state.short_term * d_short
        for it in state.interests:
            it.vector = it.vector * d_long
            it.weight *= d_long
        return state
    vec = np.asarray(vec, dtype=np.float32)
    if state.long_term is None or state.long_term.shape != vec.shape:
        state.long_term = np.zeros_like(vec)
        state.short_term = np.zeros_like(vec)
        state.interests = []
    state.long_term = state.long_term * d_long + weight * vec
    if search and weight > 0:
        # The query weighs as much as the whole decayed session so far; the old context
        # keeps SEARCH_KEEP of its size (cosine to the query ~0.97 right after).
        previous = state.short_term * d_short
        state.short_term = previous * SEARCH_KEEP + max(weight, float(np.linalg.norm(previous))) * vec
    else:
        state.short_term = state.short_term * d_short + weight * vec
    for it in state.interests:
        it.vector = it.vector * d_long
        it.weight *= d_long
    if not search:
        _assign(state, vec, weight, max_interests)
    return state


def _assign(state: InterestState, vec: np.ndarray, weight: float, k: int) -> None:
    if not state.interests:
        if weight > 0:
            state.interests.append(Interest(vec * weight, weight))
        return
    sims = [float(it.direction() @ vec) for it in state.interests]
    best = int(np.argmax(sims))
    if weight < 0:
        # A negative signal pushes the nearest interest away from this item and takes
        # evidence off it; an interest left with no positive weight is forgotten.
        if sims[best] > 0:
            it = state.interests[best]
            it.vector = it.vector + weight * vec
            it.weight = it.weight + weight * sims[best]
            if it.weight <= 1e-6:
                del state.interests[best]
        return
    if sims[best] >= JOIN_THRESHOLD:
        state.interests[best].vector = state.interests[best].vector + weight * vec
        state.interests[best].weight += weight
        return
    if len(state.interests) >= k:
        # Full (MIND/ComiRec keep K capsules): if two existing interests are closer to
        # each other than this engagement is to any of them, merge that pair and give
        # the new taste its own centroid; otherwise it joins its nearest interest.
        i, j, pair_sim = _closest_pair(state.interests)
        if pair_sim <= sims[best]:
            state.interests[best].vector = state.interests[best].vector + weight * vec
            state.interests[best].weight += weight
            return
        a, b = state.interests[i], state.interests[j]
        merged = Interest(a.vector + b.vector, a.weight + b.weight, a.label if a.weight >= b.weight else b.label)
        state.interests = [it for n, it in enumerate(state.interests) if n not in (i, j)] + [merged]
    state.interests.append(Interest(vec * weight, weight))


def _closest_pair(interests: list[Interest]) -> tuple[int, int, float]:
    dirs = np.stack([it.direction() for it in interests])
    sims = dirs @ dirs.T
    np.fill_diagonal(sims, -np.inf)
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    return int(min(i, j)), int(max(i, j)), float(sims[i, j])


def refresh_hint(rate_per_hour: float, last_event_at: datetime | None, now: datetime, *,
                 base_debounce_ms: int = 50, window_minutes: float = 5.0) -> dict:
    """How eagerly to refresh this visitor's recommendations, from the Poisson rate.

    ``priority`` is the probability of another event within ``window_minutes``:
    1 - exp(-lambda t) with lambda the rate decayed to ``now``, discounted by the time
    since the last event beyond that window (a visitor idle for an hour has left the
    page whatever their history). The push layer can refresh high-priority visitors at
    once (``debounce_ms`` = the base window) and let low-priority ones coalesce longer.
    """
    if last_event_at is None or rate_per_hour <= 0:
        return {"priority": 0.0, "debounce_ms": base_debounce_ms * 20, "rate_per_hour": 0.0}
    idle_h = max(0.0, (now - last_event_at).total_seconds() / 3600.0)
    window_h = window_minutes / 60.0
    rate = rate_per_hour * math.exp(-idle_h / RATE_HORIZON_HOURS)
    priority = 1.0 - math.exp(-rate * window_h)
    if idle_h > window_h:
        priority *= math.exp(-(idle_h - window_h) / window_h)
    debounce = int(base_debounce_ms * (1 + 19 * (1.0 - priority)))
    return {"priority": round(priority, 4), "debounce_ms": debounce, "rate_per_hour": round(rate, 3)}


def query_vectors(state: InterestState, short_mix: float = 0.5) -> list[tuple[np.ndarray, float, int | None]]:
    """The vectors to search with: each interest centroid (weight share) plus the
    short-term direction. Returns (unit vector, weight, interest index or None)."""
    out: list[tuple[np.ndarray, float, int | None]] = []
    total = sum(max(it.weight, 0.0) for it in state.interests) or 1.0
    for i, it in enumerate(state.interests):
        if it.weight > 0:
            out.append((it.direction(), (1 - short_mix) * it.weight / total, i))
    if state.short_term is not None and float(np.linalg.norm(state.short_term)) > 1e-9:
        st = state.short_term / np.linalg.norm(state.short_term)
        out.append((st, short_mix if out else 1.0, None))
    return out
