"""Sampled softmax with logQ correction: a next-item loss whose cost does not grow with the
catalogue.

The full softmax scores every position of a batch against every item (positions x items x d
per step); at 100,000 items that product is most of a training run. Here each position is
scored against its own target and a shared set of negatives: ``in_batch`` of them drawn from
the batch's own targets (popular items, the hard negatives) and ``uniform`` of them drawn from
the whole catalogue (the tail). Each negative's logit is lowered by the log of its expected
count among the draws (logQ correction, Yi et al. 2019; as in "SASRec + SS" and eSASRec), so
that ``sum exp(logit - log E) `` over the draws estimates the full softmax's normaliser
without bias, and the loss tends to the full cross-entropy as the draws grow (tested).
Negatives equal to a position's target ("accidental hits") are masked for that position.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class NegativeSampler:
    """Draws the shared negatives of one batch (items are 1-based; 0 is padding)."""

    n_items: int
    in_batch: int = 256
    uniform: int = 256

    def draw(self, targets: torch.Tensor, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(negatives (K,), log of each one's expected count among the K draws (K,)).

        In-batch draws pick positions of the batch uniformly, so item j comes up with
        probability c_j / P (c_j: its count among the P targets); uniform draws with 1 / n.
        """
        targets = targets.reshape(-1)
        parts = []
        if self.in_batch and len(targets):
            parts.append(targets[torch.randint(len(targets), (self.in_batch,), generator=generator)])
        if self.uniform:
            parts.append(torch.randint(1, self.n_items + 1, (self.uniform,), generator=generator))
        if not parts:
            raise ValueError("a sampled softmax needs in_batch or uniform negatives (both are 0)")
        negatives = torch.cat(parts)
        return negatives, self.log_expected(negatives, targets)

    def log_expected(self, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log E[count of each of ``items`` among one batch's draws] given the batch's targets."""
        expected = torch.full(items.shape, self.uniform / self.n_items, dtype=torch.float32)
        if self.in_batch and len(targets):
            # Counts by search in the sorted distinct targets: a bincount would cost O(catalogue).
            distinct, counts = torch.unique(targets, return_counts=True)
            at = torch.searchsorted(distinct, items).clamp(max=len(distinct) - 1)
            hit = distinct[at] == items
            expected = expected + torch.where(hit, counts[at].float(), 0.0) * (self.in_batch / len(targets))
        return torch.log(expected)


def sampled_softmax_loss(hidden: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                         targets: torch.Tensor, negatives: torch.Tensor, log_expected: torch.Tensor | None
                         ) -> torch.Tensor:
    """Mean over positions of -log softmax(target) against the shared negatives.

    hidden (P, d): the sequence states; positive (P, d): each one's target embedding;
    negative (K, d): the negatives' embeddings; targets (P,), negatives (K,): their item
    indices (to mask accidental hits); log_expected (K,): the logQ correction (None: off).
    """
    pos = (hidden * positive).sum(-1, keepdim=True)
    neg = hidden @ negative.T
    if log_expected is not None:
        neg = neg - log_expected[None]
    neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos, neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
