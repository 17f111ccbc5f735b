"""The sequential/next-item model and strategy: learns order, serves through the engine."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from recsys import seqmodel

TINY = {"d": 16, "layers": 1, "heads": 1, "dropout": 0.0, "max_len": 8, "epochs": 120, "batch_size": 32, "lr": 0.01}


def top(model: seqmodel.NextItemModel, history: list[str], exclude: set[str] = frozenset()) -> str:
    scores = model.score(history)
    order = [model.item_ids[i] for i in np.argsort(-scores)]
    return next(i for i in order if i not in exclude)


def test_learns_a_deterministic_sequence():
    items = ["A", "B", "C", "D", "E"]
    seqs = [["A", "B", "C"]] * 20 + [["D", "E"]] * 20
    model = seqmodel.train(seqs, items, None, seqmodel.SeqConfig.from_dict(TINY))
    assert top(model, ["A"]) == "B"
    assert top(model, ["A", "B"], exclude={"A", "B"}) == "C"
    assert top(model, ["D"]) == "E"


def test_order_matters_not_just_co_occurrence():
    # B follows A, and A follows B: the same pair, opposite next items by position.
    items = ["A", "B", "X", "Y"]
    seqs = [["A", "B", "X"]] * 20 + [["B", "A", "Y"]] * 20
    model = seqmodel.train(seqs, items, None, seqmodel.SeqConfig.from_dict(TINY))
    assert top(model, ["A", "B"], exclude={"A", "B"}) == "X"
    assert top(model, ["B", "A"], exclude={"A", "B"}) == "Y"


@pytest.mark.parametrize("ensemble", [1, 3])
def test_round_trip_and_new_items_from_text(ensemble):
    rng = np.random.default_rng(0)
    text = rng.normal(size=(4, 12)).astype(np.float32)
    model = seqmodel.train([["A", "B", "C"]] * 10, ["A", "B", "C", "D"], text,
                           seqmodel.SeqConfig.from_dict({**TINY, "ensemble": ensemble}))
    assert len(model.nets) == ensemble
    # Scores are the members' mean distribution, as log-probabilities.
    assert np.isclose(np.exp(model.score(["A"])).sum(), 1.0, atol=1e-4)
    again = seqmodel.loads(seqmodel.dumps(model))
    assert np.allclose(again.score(["A"]), model.score(["A"]), atol=1e-5)
    # A new item never seen in training, with C's text: it ranks close to where C does.
    added = again.add_items(["NEW"], text[2:3])
    assert added == 1 and "NEW" in again.index
    scores = again.score(["A", "B"])
    assert scores.shape == (5,)
    assert np.isfinite(scores[again.index["NEW"] - 1])


@pytest.mark.django_db(transaction=True)
def test_strategy_recommends_the_next_item_with_a_reason(embedded_catalogue):
    from recsys.engine import recommend
    from recsys.models import SlotConfig, StrategyConfig, TrainedModel
    from recsys.tasks import train_sequential
    from tracking.services import record_event

    by_title = {f.title: str(f.ml_id) for f in embedded_catalogue}
    chain = [by_title["Alien"], by_title["Aliens"], by_title["The Terminator"]]
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    for v in range(8):
        for n, item in enumerate(chain):
            record_event("item_viewed", visitor_id=f"v{v}", item_id=item, occurred_at=start + timedelta(minutes=v * 5 + n))
    StrategyConfig.objects.create(strategy_id="sequential/next-item", config=TINY)

    assert train_sequential() == 1
    assert train_sequential() == 2  # versions accumulate; workers load the newest
    assert TrainedModel.objects.filter(name="sequential/next-item").count() == 2

    record_event("item_viewed", visitor_id="fresh", item_id=chain[0], occurred_at=start + timedelta(hours=1))
    SlotConfig.objects.create(slot="next", version=1, config={
        "strategies": {"sequential/next-item": 1.0}, "exclude_events": {"item_viewed": None}, "limit": 3})
    recs = recommend("fresh", "next", k=3)
    assert recs.items[0].item_id == chain[1]
    assert recs.items[0].reasons[0].text == "Often watched after Alien (1995)"
    assert recs.items[0].reasons[0].item_id == chain[0]


def test_random_windows_keep_every_transition_once():
    import random

    seqs = [list(range(1, 13)), [1, 2, 3], list(range(1, 7))]
    fixed = seqmodel._windows(seqs, 4)
    rng = random.Random(0)
    for _ in range(5):
        rows = seqmodel._windows(seqs, 4, rng)
        pairs = sorted((int(a), int(b)) for r in rows for a, b in zip(r[:-1], r[1:]) if b)
        assert pairs == sorted((int(a), int(b)) for r in fixed for a, b in zip(r[:-1], r[1:]) if b)
