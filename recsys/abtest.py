"""A/B arithmetic, no database: deterministic arm assignment and the Wilson score interval."""
from __future__ import annotations

import hashlib
import math
from typing import Any, Sequence

# z for a two-sided 95% interval.
Z95 = 1.959963984540054


def bucket(experiment_id: int | str, visitor_id: str) -> float:
    """A uniform number in [0, 1) fixed by (experiment, visitor).

    A hash, not a stored assignment: every worker and web process agrees without a
    lookup, and a new experiment id reshuffles visitors independently of the last one.
    """
    digest = hashlib.sha256(f"{experiment_id}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment_id: int | str, visitor_id: str, arms: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The arm a visitor sees: arms split traffic in proportion to their ``weight``."""
    if not arms:
        raise ValueError("an experiment needs at least one arm")
    weights = [max(0.0, float(a.get("weight", 1))) for a in arms]
    total = sum(weights)
    if total <= 0:
        raise ValueError("arm weights must not all be zero")
    x = bucket(experiment_id, visitor_id) * total
    acc = 0.0
    for arm, w in zip(arms, weights):
        acc += w
        if x < acc:
            return arm
    return arms[-1]


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sound at small counts and near 0 or 1)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
