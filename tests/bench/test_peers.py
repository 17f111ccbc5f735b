"""bench.peers: the peer libraries are scored on LiveRec's own split, exclusion and metrics,
and their tuned results come back as one table beside LiveRec's rows."""
from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from bench.peers import compare, protocol, run
from recsys.evaluation import baselines, ranking_metrics


@pytest.fixture
def csvs(tmp_path):
    """40 users walking a ring of 30 items (so order predicts the next item), interleaved in
    time; every fourth user re-watches its first item just before its last step (a
    re-interaction, which the stream protocol must skip)."""
    rng = random.Random(7)
    items, events = tmp_path / "ITEMS.csv", tmp_path / "EVENTS.csv"
    with open(items, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title"])
        w.writerows([f"i{i}", f"Item {i}"] for i in range(30))
    rows = []
    for u in range(40):
        start = rng.randrange(30)
        for n in range(12):
            rows.append([f"u{u}", f"i{(start + n) % 30}", "viewed", 1000 + 50 * n + u])
        if u % 4 == 0:
            rows.append([f"u{u}", f"i{start}", "viewed", 1000 + 50 * 11 - 25 + u])
    rows.sort(key=lambda r: r[3])
    with open(events, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event", "timestamp"])
        w.writerows(rows)
    return events, items


def _popularity_as_recsys_evaluate_scores_it(split, catalogue, k=10):
    """recsys.evaluation.runner.evaluate's baseline loop, verbatim."""
    model = baselines.Popularity(catalogue, split.train)
    acc = ranking_metrics.Accumulator(k)
    for target in split.targets:
        acc.add(target.item, model.recommend([h.item for h in target.history], k))
    item_users: dict[str, int] = {}
    for _, item in {(e.user, e.item) for e in split.train}:
        item_users[item] = item_users.get(item, 0) + 1
    return acc.result(len(catalogue), item_users, len({e.user for e in split.train}))


@pytest.mark.parametrize("proto", ["loo", "stream"])
def test_harness_scores_a_model_exactly_as_recsys_evaluate(csvs, proto):
    events, catalogue = protocol.load(*csvs)
    split = protocol.make_split(events, proto, validation=False)
    model = baselines.Popularity(catalogue, split.train)

    got = protocol.evaluate(lambda targets: np.tile(model.scores([]), (len(targets), 1)), split, catalogue)

    assert got == _popularity_as_recsys_evaluate_scores_it(split, catalogue)
    assert got["n"] == len(split.targets) > 0
    if proto == "stream":
        assert split.skipped_repeats > 0  # re-watches are not targets, as in recsys_evaluate


@pytest.mark.parametrize("proto", ["loo", "stream"])
def test_items_seen_before_the_target_are_never_ranked(csvs, proto):
    events, catalogue = protocol.load(*csvs)
    split = protocol.make_split(events, proto, validation=False)
    index = {item: i for i, item in enumerate(catalogue)}

    def history_first(targets):
        # A model that loves what the user already saw, then the right answer.
        out = np.zeros((len(targets), len(catalogue)))
        for r, t in enumerate(targets):
            out[r, [index[h.item] for h in t.history]] = 2.0
            out[r, index[t.item]] = 1.0
        return out

    result = protocol.evaluate(history_first, split, catalogue)
    assert result["HR@10"] == result["NDCG@10"] == result["MRR@10"] == 1.0


def test_runner_caches_results_and_compare_prints_them_beside_liverec(csvs, tmp_path, capsys):
    out = tmp_path / "peers.json"
    args = ["--events", str(csvs[0]), "--items", str(csvs[1]), "--models", "popularity", "--out", str(out)]

    assert run.main(args) == 0
    results = json.loads(out.read_text())
    (fingerprint, section), = results.items()
    events, catalogue = protocol.load(*csvs)
    for proto in ("loo", "stream"):
        test = section[proto]["popularity"]["test"]
        expected = _popularity_as_recsys_evaluate_scores_it(protocol.make_split(events, proto, False), catalogue)
        assert test["metrics"]["NDCG@10"] == round(expected["NDCG@10"], 5)

    # A second run reads the cache instead of training again.
    capsys.readouterr()
    run.main(args)
    assert "validation 1/1" not in capsys.readouterr().out

    liverec = {"protocol": "loo", "k": 10, "rows": [
        {"name": "for-you (default slot)", "kind": "slot", "HR@10": 0.5, "NDCG@10": 0.5, "MRR@10": 0.4}]}
    printed = compare.table(liverec, None, section, anchors=True)
    assert "popularity (LiveRec built-in, via this harness)" in printed and "measured" in printed
    assert "LiveRec run" in printed and "[ANCHORS]" in printed
    # Popularity is a check, not a peer: with no measured peer the target falls back to ANCHORS.
    assert f"= {0.5 / 0.1068:.3f} x best peer" in printed and "no measured peer" in printed

    # With a measured peer, the target line uses it.
    peer = json.loads(json.dumps(section["loo"]["popularity"]))
    peer["label"] = "SASRec (measured)"
    peer["test"]["metrics"]["NDCG@10"] = 0.25
    section["loo"]["sasrec"] = peer
    printed = compare.table(liverec, None, section)
    assert "for-you (default slot) loo NDCG@10: 0.5000 = 2.000 x best peer (SASRec (measured), 0.2500, measured)" in printed


def _peers_missing() -> str | None:
    try:
        import implicit  # noqa: F401

        from bench.peers import recbole_compat  # noqa: F401
    except ImportError as exc:
        return f"peer packages not installed in this venv ({exc}); `make peers` creates .venv-peers"
    return None


@pytest.mark.skipif(_peers_missing() is not None, reason=str(_peers_missing()))
def test_peers_train_and_score_on_both_protocols(csvs, tmp_path):
    out = tmp_path / "peers.json"
    run.main(["--events", str(csvs[0]), "--items", str(csvs[1]), "--models", "als", "bpr", "gru4rec", "sasrec",
              "--grid-limit", "1", "--max-epochs", "10", "--out", str(out)])

    (_, section), = json.loads(out.read_text()).items()
    events, catalogue = protocol.load(*csvs)
    for proto in ("loo", "stream"):
        n = len(protocol.make_split(events, proto, False).targets)
        for name in ("als", "bpr", "gru4rec", "sasrec"):
            test = section[proto][name]["test"]
            assert test["metrics"]["n"] == n
            assert 0.0 <= test["metrics"]["NDCG@10"] <= test["metrics"]["HR@10"] <= 1.0
    # On a ring the next item is fully determined by the last one: the sequence models find it.
    assert section["loo"]["sasrec"]["test"]["metrics"]["HR@10"] > 0.5
