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
    # The request path's top-k: the same distribution, exclusions left out.
    probs = np.exp(model.score(["A", "B"]))
    best = [model.item_ids[i] for i in np.argsort(-probs) if model.item_ids[i] != "A"][:2]
    top = model.top(["A", "B"], 2, exclude=["A"])
    assert [i for i, _ in top] == best
    assert np.allclose([p for _, p in top], [probs[model.index[i] - 1] for i in best], atol=1e-5)
    assert model.top(["unknown"], 2) == []
    # A new item never seen in training, with C's text: it ranks close to where C does.
    added = again.add_items(["NEW"], text[2:3])
    assert added == 1 and "NEW" in again.index
    scores = again.score(["A", "B"])
    assert scores.shape == (5,)
    assert np.isfinite(scores[again.index["NEW"] - 1])


def test_the_stored_blob_folds_the_text_into_the_item_tables():
    """The text embeddings (n_items x 384 per member) are not stored: at 100,000 items they made
    a blob larger than one PostgreSQL value holds. A blob of the earlier layout still loads."""
    import io

    import torch

    rng = np.random.default_rng(1)
    items = [f"i{n}" for n in range(300)]
    text = rng.normal(size=(300, 384)).astype(np.float32)
    model = seqmodel.train([items[:5]] * 4, items, text, seqmodel.SeqConfig.from_dict({**TINY, "epochs": 2,
                                                                                        "ensemble": 2}))
    blob = seqmodel.dumps(model)
    assert len(blob) < text.nbytes / 2  # the text matrix alone is 460,800 bytes; two tables of 16-d, ~40,000
    again = seqmodel.loads(blob)
    assert np.allclose(again.score(["i0", "i1"]), model.score(["i0", "i1"]), atol=1e-5)
    legacy = io.BytesIO()
    torch.save({"item_ids": items, "config": model.config.__dict__, "states": [n.state_dict() for n in model.nets],
                "text_dim": 384, "trained_at": 0.0, "metrics": {}}, legacy)
    old = seqmodel.loads(legacy.getvalue())
    assert np.allclose(old.score(["i0", "i1"]), model.score(["i0", "i1"]), atol=1e-5)


def test_top_on_a_large_catalogue_takes_the_int8_shortlist_and_matches_float():
    """From INT8_MIN_ITEMS items the full-table product runs in int8; the shortlist is then
    scored in float, so the top items and their probabilities match the float path."""
    rng = np.random.default_rng(2)
    items = [f"i{n}" for n in range(3000)]
    text = rng.normal(size=(3000, 32)).astype(np.float32)
    seqs = [list(rng.choice(items, 8, replace=False)) for _ in range(60)]
    model = seqmodel.train(seqs, items, text, seqmodel.SeqConfig.from_dict({**TINY, "epochs": 3, "ensemble": 2}))
    history = seqs[0][:5]
    probs = np.exp(model.score(history))
    best = [model.item_ids[i] for i in np.argsort(-probs) if model.item_ids[i] not in history][:10]
    model.INT8_MIN_ITEMS = 1000
    assert all(q is not None for q in model._int8())  # the int8 path is taken
    top = model.top(history, 10, exclude=history)
    assert [i for i, _ in top] == best
    assert np.allclose([p for _, p in top], [probs[model.index[i] - 1] for i in best], rtol=0.02)


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
