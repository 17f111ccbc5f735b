"""Built-in reference rows the engine does not run: popularity and item-kNN.

Both are trained once on the training part of the split (as the peers in bench/peers are)
and rank the whole catalogue, excluding the history, like every other row.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import sparse

from .splits import Interaction


class _Base:
    def __init__(self, catalogue: Sequence[str], train: Sequence[Interaction]):
        self.items = list(catalogue)
        self.index = {item: i for i, item in enumerate(self.items)}
        pairs = {(e.user, self.index[e.item]) for e in train if e.item in self.index}
        users = {u: n for n, u in enumerate(sorted({u for u, _ in pairs}))}
        rows = [users[u] for u, _ in pairs]
        cols = [i for _, i in pairs]
        self.matrix = sparse.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)),
                                        shape=(len(users), len(self.items)))
        self.popularity = np.asarray(self.matrix.sum(0)).ravel()

    def scores(self, history: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, history: Sequence[str], k: int) -> list[str]:
        scores = self.scores(history).astype(np.float64)
        for item in history:
            i = self.index.get(item)
            if i is not None:
                scores[i] = -np.inf
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [self.items[i] for i in top if np.isfinite(scores[i])]


class Popularity(_Base):
    """Number of distinct users per item."""

    def scores(self, history: Sequence[str]) -> np.ndarray:
        return self.popularity.copy()


class ItemKNN(_Base):
    """Cosine item-item similarity on binary interactions, ``neighbours`` kept per item;
    a user's score for j is the sum of sim(i, j) over the history items i. Ties (e.g. all
    zero for a cold user) are broken by popularity."""

    def __init__(self, catalogue: Sequence[str], train: Sequence[Interaction], neighbours: int = 10):
        super().__init__(catalogue, train)
        co = (self.matrix.T @ self.matrix).tocsr().astype(np.float32)
        norms = np.sqrt(self.popularity)
        norms[norms == 0] = 1.0
        co = sparse.diags(1.0 / norms) @ co @ sparse.diags(1.0 / norms)
        co = co.tolil()
        co.setdiag(0.0)
        co = co.tocsr()
        co.eliminate_zeros()
        rows, cols, vals = [], [], []
        for i in range(co.shape[0]):
            start, end = co.indptr[i], co.indptr[i + 1]
            if start == end:
                continue
            idx, val = co.indices[start:end], co.data[start:end]
            keep = np.argsort(-val, kind="stable")[:neighbours]
            rows.extend([i] * len(keep))
            cols.extend(idx[keep])
            vals.extend(val[keep])
        self.sim = sparse.csr_matrix((vals, (rows, cols)), shape=co.shape)
        self.tiebreak = self.popularity / (self.popularity.max() or 1.0) * 1e-6

    def scores(self, history: Sequence[str]) -> np.ndarray:
        idx = [self.index[i] for i in history if i in self.index]
        if not idx:
            return self.tiebreak.copy()
        return np.asarray(self.sim[idx].sum(0)).ravel() + self.tiebreak
