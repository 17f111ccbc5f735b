"""Sampled-softmax training of the sequential model: the loss, the choice by catalogue size,
and a model trained with it learning a sequential pattern."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from recsys import seqmodel
from recsys.sequence.sampled_softmax import NegativeSampler, sampled_softmax_loss


def _toy(n_items: int = 60, d: int = 8, positions: int = 400):
    """A random item table, random states and targets drawn from a skewed popularity."""
    torch.manual_seed(0)
    table = torch.randn(n_items + 1, d)
    hidden = torch.randn(positions, d)
    popularity = torch.arange(1, n_items + 1).float() ** -1.2
    targets = torch.multinomial(popularity / popularity.sum(), positions, replacement=True) + 1
    full = float(F.cross_entropy(hidden @ table[1:].T, targets - 1))
    return table, hidden, targets, full


def _mean_sampled_loss(sampler, table, hidden, targets, corrected: bool, draws: int = 10) -> float:
    losses = []
    for _ in range(draws):
        negatives, log_expected = sampler.draw(targets)
        losses.append(float(sampled_softmax_loss(hidden, table[targets], table[negatives], targets, negatives,
                                                 log_expected if corrected else None)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("in_batch, uniform", [(4000, 4000), (0, 8000)])
def test_the_corrected_sampled_loss_tends_to_the_full_cross_entropy(in_batch, uniform):
    table, hidden, targets, full = _toy()
    sampler = NegativeSampler(60, in_batch, uniform)
    corrected = _mean_sampled_loss(sampler, table, hidden, targets, corrected=True)
    uncorrected = _mean_sampled_loss(sampler, table, hidden, targets, corrected=False)
    assert corrected == pytest.approx(full, rel=0.01)
    # Without logQ the many copies of each negative inflate the normaliser far past the full one.
    assert uncorrected > full * 1.3


def test_expected_counts_follow_the_batch_targets_and_the_catalogue():
    sampler = NegativeSampler(n_items=10, in_batch=4, uniform=5)
    targets = torch.tensor([3, 3, 3, 7])
    expected = sampler.log_expected(torch.tensor([3, 7, 1]), targets).exp()
    # Item 3 is 3 of the 4 targets: 4 * 3/4 in-batch draws; every item 5/10 uniform draws.
    assert expected.tolist() == pytest.approx([3.0 + 0.5, 1.0 + 0.5, 0.5])
    negatives, log_expected = sampler.draw(targets)
    assert len(negatives) == 9 and torch.equal(log_expected, sampler.log_expected(negatives, targets))


def test_accidental_hits_do_not_count_against_their_own_target():
    hidden = torch.tensor([[1.0, 0.0]])
    emb = torch.tensor([[2.0, 0.0]])
    target = torch.tensor([5])
    alone = sampled_softmax_loss(hidden, emb, torch.zeros(0, 2), target, torch.zeros(0, dtype=torch.long), None)
    with_hit = sampled_softmax_loss(hidden, emb, emb, target, target, None)
    assert float(alone) == pytest.approx(0.0) and float(with_hit) == pytest.approx(0.0)


def test_the_loss_is_chosen_by_catalogue_size():
    auto = seqmodel.SeqConfig.from_dict({"full_softmax_max_items": 5000})
    assert auto.full_softmax(5000) and not auto.full_softmax(5001)
    assert seqmodel.SeqConfig.from_dict({"loss": "full"}).full_softmax(10**6)
    assert not seqmodel.SeqConfig.from_dict({"loss": "sampled"}).full_softmax(10)
    with pytest.raises(ValueError, match="auto, full, sampled"):
        seqmodel.SeqConfig.from_dict({"loss": "softmax"})


def test_a_model_trained_with_sampled_softmax_learns_the_sequential_pattern():
    # 400 items in fixed chains of five: after item k of a chain comes item k+1. Each visitor
    # walks one chain; 32 + 32 negatives per batch, far fewer than the catalogue.
    rng = random.Random(3)
    items = [f"i{n}" for n in range(400)]
    chains = [items[c * 5:(c + 1) * 5] for c in range(80)]
    seqs = [rng.choice(chains) for _ in range(1200)]
    cfg = seqmodel.SeqConfig.from_dict({"d": 32, "layers": 1, "heads": 1, "dropout": 0.0, "max_len": 8,
                                        "epochs": 15, "batch_size": 64, "lr": 0.01, "loss": "sampled",
                                        "negatives_in_batch": 32, "negatives_uniform": 32})
    model = seqmodel.train(seqs, items, None, cfg)
    right = 0
    for chain in chains:
        scores = model.score(chain[:2])
        right += model.item_ids[int(np.argmax(scores))] == chain[2]
    assert right >= 0.9 * len(chains)


def test_the_site_setting_sets_the_catalogue_size_threshold(settings):
    from recsys.services import sequential

    settings.LIVEREC = {"SEQUENTIAL": {"FULL_SOFTMAX_MAX_ITEMS": 100}}
    cfg = sequential.training_config({"loss": "auto", "d": 32})
    assert cfg.d == 32 and cfg.full_softmax(100) and not cfg.full_softmax(101)
