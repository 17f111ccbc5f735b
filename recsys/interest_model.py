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
          long_half_life: float, short_half_life: float, max_interests: int = MAX_INTERESTS) -> InterestState:
    """Fold one engagement (embedding ``vec`` with signed ``weight``) into the state, in place."""
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
    state.short_term = state.short_term * d_short + weight * vec
    for it in state.interests:
        it.vector = it.vector * d_long
        it.weight *= d_long
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
        # A negative signal pushes the nearest interest away from this item.
        if sims[best] > 0:
            state.interests[best].vector = state.interests[best].vector + weight * vec
        return
    if sims[best] >= JOIN_THRESHOLD or len(state.interests) >= k:
        if len(state.interests) >= k and sims[best] < JOIN_THRESHOLD:
            # Full: replace the weakest interest when it weighs less than this engagement.
            weakest = int(np.argmin([it.weight for it in state.interests]))
            if state.interests[weakest].weight < weight:
                state.interests[weakest] = Interest(vec * weight, weight)
                return
        state.interests[best].vector = state.interests[best].vector + weight * vec
        state.interests[best].weight += weight
    else:
        state.interests.append(Interest(vec * weight, weight))


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
