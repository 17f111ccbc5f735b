"""The cold-start protocols of recsys_evaluate: cold items, new visitors, sparse."""
from __future__ import annotations

import json
from collections import Counter
from statistics import median

import pytest
from django.core.management import call_command

from recsys.evaluation import splits
from recsys.evaluation.splits import Interaction

from .test_evaluation import tiny_csv  # noqa: F401  (fixture)


def _ev(user, item, ts, order):
    return Interaction(user, item, "rated", ts, None, order)


def test_cold_items_withholds_the_newest_items_from_training_and_histories():
    # Items appear in order a, b, c, d, e: the newest 20% is e.
    events = [_ev("u", "a", 1, 0), _ev("u", "b", 2, 1), _ev("v", "c", 3, 2), _ev("v", "d", 4, 3),
              _ev("w", "e", 5, 4), _ev("w", "a", 6, 5), _ev("u", "e", 7, 6), _ev("v", "a", 8, 7)]
    split = splits.cold_items(events)
    assert all(e.item != "e" for e in split.train)
    by_user = {t.user: t for t in split.targets}
    assert (by_user["u"].item, by_user["u"].group) == ("e", "cold")
    assert (by_user["v"].item, by_user["v"].group) == ("a", "warm")
    # w's history held only the cold item: nothing to predict from.
    assert "w" not in by_user
    assert all(h.item != "e" for t in split.targets for h in t.history)


def test_new_visitors_predicts_the_second_and_third_from_the_first_ones():
    events = [_ev(f"u{n}", f"i{(n + k) % 7}", n * 10 + k, n * 10 + k) for n in range(10) for k in range(4)]
    split = splits.new_visitors(events)
    chosen = {"u8", "u9"}  # the newest 20% by first appearance
    assert {t.user for t in split.targets} == chosen and len(split.targets) == 4
    for user in chosen:
        first, second = [t for t in split.targets if t.user == user]
        assert [h.item for h in first.history] == [e.item for e in events if e.user == user][:1]
        assert len(second.history) == 2 and second.history[1].item == first.item
        # Only the first interaction of a new visitor is in the training log.
        assert sum(e.user == user for e in split.train) == 1
    assert [e for e in split.stream] == sorted(split.stream, key=lambda e: e.key) and len(split.stream) == 4
    validation = splits.new_visitors(events, validation=True)
    assert {t.user for t in validation.targets} == {"u6", "u7"}
    assert not any(e.user in chosen for e in validation.train)


def test_the_sparse_sample_has_about_six_events_per_visitor_and_five_per_item():
    import random

    rng = random.Random(0)
    items = [f"i{n}" for n in range(400)]
    weights = [1 / (r + 1) for r in range(400)]
    events = []
    for u in range(300):
        for k in range(rng.randint(10, 60)):
            events.append(_ev(f"u{u}", rng.choices(items, weights)[0], u * 100 + k, len(events)))
    sample = splits.sparse_sample(events)
    assert median(Counter(e.user for e in sample).values()) == 6
    assert abs(median(Counter(e.item for e in sample).values()) - 5) <= 1
    assert splits.sparse(events).protocol == "sparse"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("protocol", ["cold-items", "new-visitors"])
def test_the_command_reports_cold_and_warm_rows(tiny_csv, tmp_path, capsys, protocol):  # noqa: F811
    from recsys.models import StrategyConfig

    StrategyConfig.objects.create(strategy_id="sequential/next-item",
                                  config={"d": 16, "layers": 1, "heads": 1, "epochs": 20, "lr": 0.01, "dropout": 0.0})
    events, items = tiny_csv
    out = tmp_path / "out.json"
    call_command("recsys_evaluate", events=str(events), items=str(items), protocol=protocol, k=2,
                 json_path=str(out), no_progress=True, strategies="sequential/next-item,content/interests")
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert report["protocol"] == protocol and report["targets"] > 0
    if protocol == "cold-items":
        # The newest item (of six: 20% rounds to one) is The Terminator, withheld from training.
        for name in ("for-you (default slot)", "sequential/next-item", "content/interests", "popularity"):
            assert {name, f"{name} [cold]", f"{name} [warm]"} <= set(rows)
    else:
        assert "for-you (default slot)" in rows and not any("[cold]" in n for n in rows)
    for row in rows.values():
        assert 0.0 <= row["NDCG@2"] <= row["HR@2"] <= 1.0
