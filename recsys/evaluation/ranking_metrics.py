"""Ranking metrics over full rankings (no sampled negatives: Krichene and Rendle, 2020).

A "rank" is the 0-based position of the held-out item in the recommended list after the
excluded items were removed, or None when it is not in the top K.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence


def hit(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg(rank: int | None, k: int) -> float:
    """One relevant item: DCG = 1/log2(rank+2), and the ideal DCG is 1."""
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def mrr(rank: int | None, k: int) -> float:
    return 1.0 / (rank + 1) if rank is not None and rank < k else 0.0


def rank_of(target: str, ranked: Sequence[str]) -> int | None:
    try:
        return list(ranked).index(target)
    except ValueError:
        return None


def coverage(lists: Iterable[Sequence[str]], catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one recommended list."""
    seen: set[str] = set()
    for lst in lists:
        seen.update(lst)
    return len(seen) / catalogue_size if catalogue_size else 0.0


def novelty(lists: Iterable[Sequence[str]], item_users: dict[str, int], n_users: int) -> float:
    """Mean self-information -log2 p(i) of recommended items, p(i) = (users of i + 1) / (users + 1).

    Higher means less popular items are recommended (Zhou et al., 2010); the +1 keeps
    never-seen items finite.
    """
    total, count = 0.0, 0
    for lst in lists:
        for item in lst:
            total += -math.log2((item_users.get(item, 0) + 1) / (n_users + 1))
            count += 1
    return total / count if count else 0.0


@dataclass
class Accumulator:
    """Collects one row of the result table: one ranked list per held-out event."""

    k: int
    ranks: list[int | None] = field(default_factory=list)
    lists: list[list[str]] = field(default_factory=list)

    def add(self, target: str, ranked: Sequence[str]) -> None:
        ranked = list(ranked)[:self.k]
        self.ranks.append(rank_of(target, ranked))
        self.lists.append(ranked)

    def result(self, catalogue_size: int, item_users: dict[str, int], n_users: int) -> dict[str, float]:
        n = len(self.ranks) or 1
        k = self.k
        return {
            f"HR@{k}": sum(hit(r, k) for r in self.ranks) / n,
            f"NDCG@{k}": sum(ndcg(r, k) for r in self.ranks) / n,
            f"MRR@{k}": sum(mrr(r, k) for r in self.ranks) / n,
            "coverage": coverage(self.lists, catalogue_size),
            "novelty": novelty(self.lists, item_users, n_users),
            "n": len(self.ranks),
        }
