"""Warm-started sequential model: the previous version continued on recent events."""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from recsys import seqmodel

TINY = {"d": 16, "layers": 1, "heads": 1, "dropout": 0.0, "max_len": 8, "epochs": 80, "batch_size": 32, "lr": 0.01}


def _trained(items, text):
    seqs = [["A", "B", "C"]] * 20 + [["D", "E"]] * 20
    return seqmodel.loads(seqmodel.dumps(seqmodel.train(seqs, items, text, seqmodel.SeqConfig.from_dict(TINY))))


def test_a_warm_start_without_epochs_keeps_every_known_item_where_it_was():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(6, 12)).astype(np.float32)
    previous = _trained(list("ABCDE"), text[:5])
    catalogue = ["N", *"ABCDE"]  # a new item, and the known ones renumbered
    warm = seqmodel.warm_start(previous, [], catalogue, np.vstack([text[5:], text[:5]]),
                               seqmodel.SeqConfig.from_dict({**TINY, "epochs": 0}))
    before = previous.score(["A", "B"])
    after = warm.score(["A", "B"])
    known = [warm.index[i] - 1 for i in "ABCDE"]
    # The same logits for the known items; the new one joins from its text, as add_items puts it.
    previous.add_items(["N"], text[5:])
    assert np.allclose(after, previous.score(["A", "B"])[[5, 0, 1, 2, 3, 4]], atol=1e-4)
    assert np.argmax(after[known]) == np.argmax(before)


def test_a_warm_start_learns_a_new_item_from_recent_events_and_keeps_the_old_pattern():
    rng = np.random.default_rng(1)
    text = rng.normal(size=(6, 12)).astype(np.float32)
    previous = _trained(list("ABCDE"), text[:5])
    recent = [["D", "E", "F"]] * 20 + [["A", "B", "C"]] * 5
    warm = seqmodel.warm_start(previous, recent, list("ABCDEF"), text,
                               seqmodel.SeqConfig.from_dict({**TINY, "epochs": 30}))
    assert len(warm.nets) == len(previous.nets) and warm.config.d == previous.config.d

    def best(model, history):
        scores = model.score(history)
        return max((i for i in model.item_ids if i not in history), key=lambda i: scores[model.index[i] - 1])

    assert best(warm, ["D", "E"]) == "F"
    assert best(warm, ["A", "B"]) == "C"


def test_the_volume_schedule_trains_a_first_model_then_warm_starts_with_new_items(embedded_catalogue, film_factory,
                                                                                   settings):
    from recsys.models import Item, StrategyConfig, TrainedModel
    from recsys.services import items, sequential
    from recsys.tasks import retrain_sequential_if_due
    from tests.recsys.test_sequential import watch_the_alien_chain
    from tracking.services import record_event

    settings.LIVEREC = {"SEQUENTIAL": {"FIRST_TRAINING_MIN_EVENTS": 24, "RETRAIN_AFTER_EVENTS": 6,
                                       "WARM_START_EPOCHS": 3}}
    StrategyConfig.objects.create(strategy_id="sequential/next-item", config={**TINY, "ensemble": 2})
    assert retrain_sequential_if_due() == "not due"
    chain, start = watch_the_alien_chain(embedded_catalogue)  # 8 visitors x 3 views
    assert retrain_sequential_if_due() == "first training"
    first = TrainedModel.objects.get(name=sequential.MODEL_NAME)
    assert first.metrics["softmax"] == "full" and first.metrics["last_event_id"] > 0
    assert retrain_sequential_if_due() == "not due"

    new = film_factory("Prometheus", ["Horror", "Sci-Fi"], ml_id=99)
    items.embed_items([new.pk])
    for v in range(3):
        for n, item in enumerate([chain[2], str(new.ml_id)]):
            record_event("item_viewed", visitor_id=f"w{v}", item_id=item,
                         occurred_at=start + timedelta(hours=1, minutes=v * 5 + n))
    assert retrain_sequential_if_due() == "warm start"
    warm = TrainedModel.objects.filter(name=sequential.MODEL_NAME).order_by("-version").first()
    assert warm.version == 2 and warm.metrics["warm_start_from"] == 1
    assert warm.metrics["visitors"] == 3 and warm.metrics["new_items"] == 1
    model = sequential.current_model()
    assert model.row_id == warm.pk and str(new.ml_id) in model.index and len(model.nets) == 2
    assert Item.objects.filter(item_id=str(new.ml_id)).exists()
    assert retrain_sequential_if_due() == "not due"
