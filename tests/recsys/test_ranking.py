"""Fusion, rules, freshness and MMR as pure functions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from recsys import ranking
from recsys.ranking import ItemMeta
from recsys.strategies.base import Candidate, Reason

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def cands(*pairs, strategy="s/x"):
    return [Candidate(i, s, [Reason(strategy, f"{strategy} likes {i}")]) for i, s in pairs]


def ids(cs):
    return [c.item_id for c in cs]


def test_fusion_normalises_each_strategy_so_scales_do_not_matter():
    # b's raw scores are 1000x a's: after max-normalisation, weights alone decide.
    fused = ranking.fuse({"s/a": (1.0, cands(("x", 0.9), ("y", 0.45), strategy="s/a")),
                          "s/b": (0.5, cands(("y", 1000.0), ("z", 500.0), strategy="s/b"))})
    scores = {c.item_id: round(c.score, 6) for c in fused}
    assert scores == {"x": 1.0, "y": 1.0, "z": 0.25}
    assert ids(fused) == ["x", "y", "z"]  # ties break on item id: stable lists


def test_fused_reasons_list_every_contributing_strategy_main_one_first():
    fused = ranking.fuse({"s/a": (0.2, cands(("y", 1.0), strategy="s/a")),
                          "s/b": (1.0, cands(("y", 3.0), strategy="s/b"))})
    assert [r.strategy for r in fused[0].reasons] == ["s/b", "s/a"]


def test_fusion_ignores_zero_weights_and_empty_strategies():
    fused = ranking.fuse({"s/a": (0.0, cands(("x", 1.0))), "s/b": (1.0, []), "s/c": (1.0, cands(("y", 2.0)))})
    assert ids(fused) == ["y"]


def test_filters_drop_unavailable_unknown_and_off_category_items():
    meta = ItemMeta("a", ["Comedy"], available=True)
    assert ranking.passes_filters(meta, {})
    assert not ranking.passes_filters(ItemMeta("b", available=False), {})
    assert ranking.passes_filters(ItemMeta("b", available=False), {"available": False})
    assert not ranking.passes_filters(None, {})
    assert ranking.passes_filters(meta, {"categories": ["Drama", "Comedy"]})
    assert not ranking.passes_filters(meta, {"categories": ["Drama"]})


def test_boost_and_bury_by_id_and_category():
    meta = {"a": ItemMeta("a", ["Drama"]), "b": ItemMeta("b", ["Comedy"]), "c": ItemMeta("c", ["Comedy"])}
    out = ranking.apply_boosts(cands(("a", 1.0), ("b", 0.8), ("c", 0.7)),
                               [{"action": "boost", "categories": ["Comedy"], "factor": 2.0},
                                {"action": "bury", "item_ids": ["b"]}], meta)
    assert ids(out) == ["c", "a", "b"]
    assert [round(c.score, 3) for c in out] == [1.4, 1.0, 0.16]


def test_freshness_lifts_a_new_item_over_an_equal_old_one_and_fades():
    meta = {"old": ItemMeta("old", created_at=NOW - timedelta(days=30)), "new": ItemMeta("new", created_at=NOW)}
    out = ranking.apply_freshness(cands(("old", 1.0), ("new", 0.95)), meta, weight=0.1, half_life_hours=72, now=NOW)
    assert ids(out) == ["new", "old"]
    assert abs(out[0].score - 0.95 * 1.1) < 1e-9 and out[1].score < 1.0 + 1e-4
    same = ranking.apply_freshness(cands(("old", 1.0), ("new", 0.5)), meta, weight=0.1, half_life_hours=72, now=NOW)
    assert ids(same) == ["old", "new"]  # relative: a poor match stays poor


def test_mmr_lambda_one_keeps_relevance_order():
    v = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.0]), "c": np.array([0.0, 1.0])}
    assert ids(ranking.mmr(cands(("a", 1.0), ("b", 0.9), ("c", 0.5)), v, 1.0, 3)) == ["a", "b", "c"]


def test_mmr_demotes_a_near_duplicate_below_a_different_item():
    v = {"a": np.array([1.0, 0.0]), "b": np.array([0.995, 0.0998]), "c": np.array([0.0, 1.0])}
    out = ranking.mmr(cands(("a", 1.0), ("b", 0.9), ("c", 0.6)), v, 0.7, 3)
    assert ids(out) == ["a", "c", "b"]
    # With lambda near 1 the small relevance gap wins again.
    assert ids(ranking.mmr(cands(("a", 1.0), ("b", 0.9), ("c", 0.6)), v, 0.95, 3)) == ["a", "b", "c"]


def test_mmr_treats_items_without_vectors_as_dissimilar_and_respects_k():
    out = ranking.mmr(cands(("a", 1.0), ("b", 0.9), ("c", 0.8)), {"a": np.array([1.0, 0.0])}, 0.5, 2)
    assert ids(out) == ["a", "b"]


def test_pins_take_their_positions_and_keep_the_list_length():
    ranked = cands(("a", 3.0), ("b", 2.0), ("c", 1.0))
    out = ranking.apply_pins(ranked, [("z", 0), ("b", 2)], allowed={"a", "b", "c", "z"})
    assert ids(out) == ["z", "a", "b"]
    assert out[0].reasons[0].text == "Featured" and out[2].reasons[0].strategy == "rules/pin"


def test_a_pin_that_failed_the_rules_is_not_shown():
    ranked = cands(("a", 3.0), ("b", 2.0))
    assert ids(ranking.apply_pins(ranked, [("bought", 0)], allowed={"a", "b"})) == ["a", "b"]
