"""Fusion-weight tuning: the offline replay is ranking.fuse, and the search finds hand-checked optima."""
from __future__ import annotations

import math
import random

import pytest

from recsys import ranking
from recsys.evaluation import fusion_search
from recsys.strategies.base import Candidate


def _data(records, weights, k=10):
    return fusion_search.collection(k, weights, [{"target": t, "cands": c} for t, c in records])


# Two targets, strategies A (anchor) and B. Target 1: A ranks t second, B first; target 2: A
# ranks t first, B likes y. w_B = 0: t1 at rank 1, t2 at 0; w_B = 0.5: t1 1.3 > x 1.05,
# t2 1.0 > y 0.9: both first; w_B = 1: t2's y reaches 1.4 and passes it.
HAND = [("t", {"A": [["x", 1.0], ["t", 0.8]], "B": [["t", 1.0], ["x", 0.1]]}),
        ("t", {"A": [["t", 1.0], ["y", 0.4]], "B": [["y", 1.0]]})]


def test_replay_scores_by_hand():
    replay = fusion_search.Replay.build(_data(HAND, {"A": 1.0, "B": 0.0}))
    assert list(replay.ranks([1.0, 0.0])) == [1, 0]
    assert list(replay.ranks([1.0, 0.5])) == [0, 0]
    assert list(replay.ranks([1.0, 1.0])) == [0, 1]
    assert replay.score([1.0, 0.0])["NDCG@10"] == pytest.approx((1 / math.log2(3) + 1) / 2)
    assert replay.score([1.0, 0.5]) == {"NDCG@10": pytest.approx(1.0), "HR@10": pytest.approx(1.0)}


def test_search_finds_the_hand_checked_optimum():
    replay = fusion_search.Replay.build(_data(HAND, {"A": 1.0, "B": 0.0}))
    weights, value = fusion_search.search(replay, [1.0, 0.0], grid=[0.0, 0.5, 1.0])
    assert weights == [1.0, 0.5] and value == pytest.approx(1.0)
    # 0 and 1 tie (one first place each): a tie keeps the current weights.
    weights, _ = fusion_search.search(replay, [1.0, 1.0], grid=[0.0, 1.0])
    assert weights == [1.0, 1.0]


def test_coordinate_ascent_when_the_grid_is_too_large(monkeypatch):
    monkeypatch.setattr(fusion_search, "MAX_EXHAUSTIVE", 1)
    replay = fusion_search.Replay.build(_data(HAND, {"A": 1.0, "B": 0.0}))
    assert fusion_search.search(replay, [1.0, 0.0], grid=[0.0, 0.5, 1.0])[0] == [1.0, 0.5]


def test_tune_reports_current_and_best_and_skips_silent_strategies():
    data = _data([(t, {**c, "Q": []}) for t, c in HAND], {"A": 1.0, "B": 0.0, "Q": 0.8})
    result = fusion_search.tune(data, grid=[0.0, 0.5, 1.0])
    assert result["searched"] == ["A", "B"]  # Q proposed nothing: kept at 0.8
    assert result["best"]["weights"] == {"A": 1.0, "B": 0.5, "Q": 0.8}
    assert result["best"]["NDCG@10"] == pytest.approx(1.0)
    assert result["gain"]["NDCG@10"] == pytest.approx(1.0 - (1 / math.log2(3) + 1) / 2)
    assert "B 0.5" in fusion_search.describe(result)


def test_a_strategy_weighted_zero_proposes_nothing_and_ties_break_on_item_id():
    data = _data([("t", {"A": [["x", 1.0]], "B": [["t", 1.0]]}),
                  ("b", {"A": [["b", 1.0], ["a", 1.0]]})], {"A": 1.0, "B": 0.0}, k=1)
    replay = fusion_search.Replay.build(data)
    ranks = replay.ranks([1.0, 0.0])
    assert ranks[0] > 1000  # only B proposed t, and B is off: not in the list at all
    assert ranks[1] == 1  # a and b tie; "a" sorts first


def test_rank_normalisation_is_reciprocal_position():
    data = _data([("t", {"A": [["x", 9.0], ["t", 5.0]], "B": [["t", 0.002], ["x", 0.001]]})], {"A": 1.0, "B": 0.0})
    replay = fusion_search.Replay.build(data, normalise="rank")
    # x: 1 + w/2, t: 1/2 + w -> t leads once w > 1.
    assert replay.ranks([1.0, 0.9])[0] == 1 and replay.ranks([1.0, 1.1])[0] == 0


def test_replay_ranks_as_ranking_fuse_does():
    rng = random.Random(3)
    items = [f"i{n:02d}" for n in range(30)]
    records, fused_lists = [], []
    names = ["A", "B", "C"]
    for _ in range(40):
        cands = {}
        for sid in names:
            picked = rng.sample(items, rng.randint(0, 12))
            # coarse scores: ties happen; C sometimes only scores <= 0 (fuse skips it)
            cands[sid] = sorted([[i, rng.choice([0.0, 0.25, 0.5, 1.0, 2.0]) - (1.5 if sid == "C" else 0)]
                                 for i in picked], key=lambda p: -p[1])
        target = rng.choice(items)
        records.append((target, cands))
    for weights in ([1.0, 0.3, 0.2], [1.0, 0.0, 0.5], [0.7, 1.0, 0.0]):
        replay = fusion_search.Replay.build(_data(records, dict(zip(names, weights))))
        ranks = replay.ranks(weights)
        for (target, cands), got in zip(records, ranks):
            per = {sid: (w, [Candidate(i, s) for i, s in cands[sid]]) for sid, w in zip(names, weights)}
            order = [c.item_id for c in ranking.fuse(per)]
            want = order.index(target) if target in order else None
            assert (got if got < 10 ** 6 else None) == want
