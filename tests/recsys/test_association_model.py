"""Item-item association arithmetic (pure functions)."""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

from recsys import association_model as am

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def eng(item, minutes, weight=1.0, name="item_viewed"):
    return am.Engagement(item, weight, T0 + timedelta(minutes=minutes), name)


def test_pairs_go_forward_in_the_visitors_order_nearer_steps_count_more():
    w = am.Window(20, 24)
    for i, item in enumerate("ABC"):
        w.push(eng(item, i))
    deltas = {(a, b): round(x, 4) for a, b, x in am.pair_deltas(w, eng("D", 3), backward=0.1)}
    assert deltas[("C", "D")] == 1.0 and deltas[("B", "D")] == 0.5 and deltas[("A", "D")] == round(1 / 3, 4)
    assert deltas[("D", "C")] == 0.1  # the reverse direction counts, less


def test_a_purchase_after_a_view_weighs_the_geometric_mean_and_repeats_are_skipped():
    w = am.Window(20, 24)
    w.push(eng("A", 0))
    w.push(eng("B", 1))
    deltas = {(a, b): x for a, b, x in am.pair_deltas(w, eng("B", 2, 5.0, "purchased"), backward=0.0)}
    assert set(deltas) == {("A", "B")}
    assert math.isclose(deltas[("A", "B")], math.sqrt(5.0))


def test_the_window_is_bounded_in_items_and_time():
    w = am.Window(2, 1)
    for i, item in enumerate("ABC"):
        w.push(eng(item, i))
    assert [e.item_id for e in w.earlier(T0 + timedelta(minutes=3))] == ["C", "B"]
    assert w.earlier(T0 + timedelta(hours=5)) == []


def test_forward_decay_keys_sum_in_any_order_and_decay_with_the_half_life():
    obs = [(1.0, T0), (2.0, T0 + timedelta(hours=10)), (0.5, T0 + timedelta(hours=3))]
    keys = [am.log_key(w, t, 10.0) for w, t in obs]
    a = None
    for k in keys:
        a = am.log_add(a, k)
    b = None
    for k in random.Random(1).sample(keys, 3):
        b = am.log_add(b, k)
    assert math.isclose(a, b)
    at = T0 + timedelta(hours=10)
    expected = 1.0 * 0.5 + 2.0 + 0.5 * 0.5 ** 0.7
    assert math.isclose(am.decayed(a, at, 10.0), expected, rel_tol=1e-9)


def test_seed_weights_favour_strong_and_recent_engagements():
    weights = am.visitor_item_weights([eng("A", 0), eng("B", 1, 5.0, "purchased"), eng("C", 2)])
    assert weights == {"C": 1.0, "B": 2.5, "A": 1.0 / 3}


def test_candidates_sum_over_seeds_and_name_the_strongest_seed():
    out = am.score_candidates({"A": 1.0, "B": 2.0}, {"A": [("X", 1.0), ("B", 1.0)], "B": [("X", 0.5), ("Y", 0.1)]},
                              exclude={"Y"})
    assert out == {"X": (2.0, "A"), "B": (1.0, "A")}


def test_seed_rows_scaled_once_per_request_weigh_as_each_pair_against_the_requests_top():
    """The co-occurrence strategy keeps each seed's pairs relative to the seed's own strongest
    key (``selectors.seed_weights``, what its cache holds) and scales them per request by one
    factor per seed: the same weights as every pair exponentiated against the request's top."""
    from recsys import selectors

    keys = {"A": [("X", 12.5), ("Y", 11.0), ("Z", 3.0)], "B": [("X", 9.0), ("W", 8.25)], "old": [("Q", -900.0)]}
    rows = selectors.seed_weights(keys)
    assert rows["A"][0] == 12.5 and rows["A"][1][0] == ("X", 1.0)
    top = max(seed_top for seed_top, _ in rows.values())
    for a, pairs in keys.items():
        scale = selectors.relative_scale(rows[a][0], top)
        for (b, key), (b2, weight) in zip(pairs, rows[a][1]):
            assert b == b2
            assert math.isclose(weight * scale, math.exp(max(-700.0, key - top)), rel_tol=1e-12, abs_tol=1e-300)
