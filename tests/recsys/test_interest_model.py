"""Unit tests of the interest model's arithmetic (pure NumPy)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from recsys import interest_model as im

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def unit(*xs):
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def fold(state, vec, w, hours):
    return im.apply(state, vec, w, T0 + timedelta(hours=hours), long_half_life=24, short_half_life=1)


def test_half_life_halves_the_weight():
    assert abs(im.decay_factor(24, 24) - 0.5) < 1e-9
    assert im.decay_factor(0, 24) == 1.0


def test_two_unrelated_tastes_stay_two_interests():
    s = im.InterestState()
    cooking, scifi = unit(1, 0, 0, 0), unit(0, 0, 1, 0)
    for h, v in enumerate([cooking, scifi, cooking, scifi, cooking]):
        fold(s, v, 1.0, h * 0.1)
    dirs = sorted([it.direction() for it in s.interests], key=lambda d: -d[0])
    assert len(s.interests) == 2
    assert dirs[0] @ cooking > 0.99 and dirs[1] @ scifi > 0.99


def test_short_term_follows_the_latest_engagement_long_term_remembers():
    s = im.InterestState()
    a, b = unit(1, 0, 0), unit(0, 1, 0)
    for h in range(5):
        fold(s, a, 1.0, h)
    fold(s, b, 1.0, 10)
    st = s.short_term / np.linalg.norm(s.short_term)
    lt = s.long_term / np.linalg.norm(s.long_term)
    assert st @ b > 0.9
    assert lt @ a > lt @ b


def test_negative_signal_pushes_away():
    s = im.InterestState()
    a = unit(1, 0.2, 0)
    fold(s, a, 1.0, 0)
    before = s.interests[0].direction() @ a
    fold(s, a, -0.5, 0.1)
    assert s.interests[0].direction() @ a <= before


def test_activity_rate_rises_with_events():
    s = im.InterestState()
    fold(s, None, 0, 0)
    slow = s.rate_per_hour
    for i in range(20):
        fold(s, None, 0, 0.01 * i)
    assert s.rate_per_hour > slow * 10
