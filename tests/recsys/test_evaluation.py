"""Evaluation: metrics against hand-computed values, the protocols, the command end to end."""
from __future__ import annotations

import csv
import json
import math

import pytest
from django.core.management import call_command

from recsys.evaluation import baselines, ranking_metrics, splits
from recsys.evaluation.splits import Interaction


def test_metrics_by_hand():
    ranked = ["a", "b", "c", "d"]
    assert ranking_metrics.rank_of("c", ranked) == 2
    assert ranking_metrics.hit(2, 3) == 1.0 and ranking_metrics.hit(3, 3) == 0.0 and ranking_metrics.hit(None, 10) == 0.0
    assert ranking_metrics.ndcg(0, 10) == 1.0
    assert ranking_metrics.ndcg(2, 10) == pytest.approx(0.5)  # 1 / log2(4)
    assert ranking_metrics.ndcg(1, 10) == pytest.approx(1 / math.log2(3))
    assert ranking_metrics.ndcg(2, 2) == 0.0
    assert ranking_metrics.mrr(3, 10) == pytest.approx(0.25)
    assert ranking_metrics.coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)
    # p(a) = (3+1)/(7+1) = 1/2 -> 1 bit; p(z) = (0+1)/8 -> 3 bits; mean of [a, z] = 2 bits.
    assert ranking_metrics.novelty([["a", "z"]], {"a": 3}, 7) == pytest.approx(2.0)


def test_accumulator_averages_over_targets():
    acc = ranking_metrics.Accumulator(k=2)
    acc.add("x", ["x", "y", "z"])  # rank 0: HR 1, NDCG 1, MRR 1
    acc.add("y", ["x", "y"])  # rank 1: HR 1, NDCG 1/log2(3), MRR 1/2
    acc.add("z", ["x", "y", "z"])  # rank 2 >= k: a miss
    r = acc.result(catalogue_size=4, item_users={}, n_users=1)
    assert r["HR@2"] == pytest.approx(2 / 3)
    assert r["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert r["MRR@2"] == pytest.approx(0.5)
    assert r["coverage"] == pytest.approx(0.5)  # x, y of 4 (lists are cut at k)
    assert r["n"] == 3


def _ev(user, item, ts, order):
    return Interaction(user, item, "rated", ts, None, order)


def test_loo_split_orders_by_time_then_file_order():
    events = [_ev("u", "c", 30, 0), _ev("u", "a", 10, 1), _ev("u", "b", 10, 2), _ev("v", "a", 5, 3)]
    test = splits.loo(events)
    (target,) = test.targets  # v has one interaction: no target
    assert (target.user, target.item) == ("u", "c")
    assert [h.item for h in target.history] == ["a", "b"]  # the tie at ts 10 keeps file order
    val = splits.loo(events, validation=True)
    assert [(t.user, t.item) for t in val.targets] == [("u", "b")]
    assert all(e.item != "c" for e in val.train)


def test_stream_split_predicts_the_last_tenth_from_everything_before():
    events = [_ev("u" if n % 2 else "w", f"i{n}", n, n) for n in range(20)]
    s = splits.stream(events)
    assert [t.item for t in s.targets] == ["i18", "i19"]
    assert len(s.train) == 18
    # i19's history includes the earlier test event of the same user? (i18 is w's, i19 is u's)
    assert s.targets[1].history[-1].item == "i17"
    # A re-interaction cannot be ranked (the item is excluded): skipped and counted.
    again = events + [_ev("u", "i1", 100, 20), _ev("w", "z", 101, 21)]
    s2 = splits.stream(again, test_fraction=0.1)
    assert s2.skipped_repeats == 1


def test_baselines():
    train = [_ev("u1", "a", 1, 0), _ev("u1", "b", 2, 1), _ev("u2", "a", 3, 2), _ev("u2", "b", 4, 3),
             _ev("u3", "a", 5, 4), _ev("u3", "c", 6, 5)]
    pop = baselines.Popularity(["a", "b", "c", "d"], train)
    assert pop.recommend([], 2) == ["a", "b"]
    assert pop.recommend(["a"], 2) == ["b", "c"]
    knn = baselines.ItemKNN(["a", "b", "c", "d"], train, neighbours=10)
    # sim(b, a) = 2/sqrt(2*3) > sim(b, c) = 0: after b comes a.
    assert knn.recommend(["b"], 1) == ["a"]


@pytest.fixture
def tiny_csv(tmp_path):
    items = tmp_path / "ITEMS.csv"
    with open(items, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "text", "categories"])
        w.writerow(["1", "Toy Story (1995)", "Animation Comedy", "Animation|Comedy"])
        w.writerow(["2", "Aladdin (1992)", "Animation Musical", "Animation|Musical"])
        w.writerow(["3", "The Lion King (1994)", "Animation Musical", "Animation|Musical"])
        w.writerow(["4", "Alien (1979)", "Horror Sci-Fi", "Horror|Sci-Fi"])
        w.writerow(["5", "Aliens (1986)", "Action Sci-Fi", "Action|Sci-Fi"])
        w.writerow(["6", "The Terminator (1984)", "Action Sci-Fi", "Action|Sci-Fi"])
    events = tmp_path / "EVENTS.csv"
    t = 880_000_000
    with open(events, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event", "timestamp", "value"])
        # Two chains; two early visitors go one step further (their last step is never learned).
        visitors = [("u10", ["1", "2", "3", "5"]), ("u11", ["4", "5", "6", "2"])]
        visitors += [(f"u{u}", ["1", "2", "3"] if u % 2 else ["4", "5", "6"]) for u in range(10)]
        for user, chain in visitors:
            for item in chain:
                t += 60
                w.writerow([user, item, "rated", t, 4])
    return events, items


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("protocol", ["loo", "stream"])
def test_command_end_to_end(tiny_csv, tmp_path, capsys, protocol):
    from recsys.models import StrategyConfig

    StrategyConfig.objects.create(strategy_id="sequential/next-item",
                                  config={"d": 16, "layers": 1, "heads": 1, "epochs": 60, "lr": 0.01, "dropout": 0.0})
    events, items = tiny_csv
    out = tmp_path / "out.json"
    # loo: the slot without each of its strategies; stream: only without the ones named.
    ablations = True if protocol == "loo" else "content/interests"
    scores = tmp_path / "scores.json"
    call_command("recsys_evaluate", events=str(events), items=str(items), protocol=protocol, k=2,
                 json_path=str(out), no_progress=True, ablations=ablations, tune_weights=str(scores))
    table = capsys.readouterr().out
    assert "for-you (default slot)" in table and "item-kNN" in table
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert report["protocol"] == protocol and report["k"] == 2
    assert {"popularity", "item-kNN (cosine, k=10)", "for-you (default slot)", "sequential/next-item",
            "content/interests", "for-you without content/interests"} <= set(rows)
    assert ("for-you without popular/trending" in rows) == (protocol == "loo")
    # loo: one target per visitor; stream: the last 4 of 38 events (u8's last, u9's three).
    assert report["targets"] == (12 if protocol == "loo" else 4)
    # The chains are deterministic: the sequence model finds every learnable next item
    # (loo: all but u10's and u11's last steps; stream: all but u9's first, a cold visitor).
    seq = rows["sequential/next-item"]
    assert seq["HR@2"] >= (10 / 12 if protocol == "loo" else 3 / 4)
    for row in rows.values():
        assert 0.0 <= row["NDCG@2"] <= row["HR@2"] <= 1.0
    # The weight search's replay of the current weights is the engine's own slot row.
    tuned = report["tuning"]
    assert tuned["current"]["NDCG@2"] == pytest.approx(rows["for-you (default slot)"]["NDCG@2"])
    assert tuned["current"]["HR@2"] == pytest.approx(rows["for-you (default slot)"]["HR@2"])
    assert tuned["best"]["NDCG@2"] >= tuned["current"]["NDCG@2"]
    assert len(json.loads(scores.read_text())["targets"]) == report["targets"]
    assert "fusion weights" in table
    # The live database is untouched: the run used its own, now dropped.
    from tracking.models import Event

    assert Event.objects.count() == 0
