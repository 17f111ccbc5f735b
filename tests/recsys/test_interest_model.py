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


def test_when_full_the_two_closest_interests_merge_to_make_room_for_a_new_taste():
    s = im.InterestState()
    a, b = unit(1, 0, 0, 0), unit(0.4, 1, 0, 0)  # cosine 0.37: two interests, yet the closest pair
    c, new = unit(0, 0, 1, 0), unit(0, 0, 0, 1)
    for h, v in enumerate([a, b, c]):
        im.apply(s, v, 1.0, T0 + timedelta(hours=h * 0.1), long_half_life=24, short_half_life=1, max_interests=3)
    assert len(s.interests) == 3
    im.apply(s, new, 1.0, T0 + timedelta(hours=1), long_half_life=24, short_half_life=1, max_interests=3)
    dirs = [it.direction() for it in s.interests]
    assert len(dirs) == 3
    assert max(d @ new for d in dirs) > 0.99  # the new taste has its own centroid
    assert max(d @ c for d in dirs) > 0.99     # the distinct old one is untouched
    merged = max(s.interests, key=lambda it: it.direction() @ a)
    assert merged.direction() @ a > 0.6 and merged.direction() @ b > 0.6
    assert abs(merged.weight - sum(0.5 ** ((1 - h * 0.1) / 24) for h in (0, 1))) < 1e-4


def test_a_search_takes_over_the_short_term_but_forms_no_interest():
    s = im.InterestState()
    a, q = unit(1, 0, 0), unit(0, 1, 0)
    for h in range(5):
        fold(s, a, 1.0, h * 0.01)
    im.apply(s, q, 1.0, T0 + timedelta(hours=0.06), long_half_life=24, short_half_life=1, search=True)
    assert (s.short_term / np.linalg.norm(s.short_term)) @ q > 0.9
    assert len(s.interests) == 1


def test_refresh_hint_prefers_visitors_acting_now():
    busy, calm = im.InterestState(), im.InterestState()
    for i in range(30):
        fold(busy, None, 0, i * 0.01)
    fold(calm, None, 0, 0)
    now = T0 + timedelta(hours=0.3)
    hb = im.refresh_hint(busy.rate_per_hour, busy.last_event_at, now)
    hc = im.refresh_hint(calm.rate_per_hour, calm.last_event_at, now)
    assert hb["priority"] > hc["priority"] and hb["debounce_ms"] <= hc["debounce_ms"]
