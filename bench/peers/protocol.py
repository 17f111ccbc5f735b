"""LiveRec's evaluation protocol for models that are not LiveRec: the same split, the same
exclusion, the same metrics, with no database and no Django.

The split comes from ``recsys.evaluation.splits`` (``loo`` / ``stream``), exactly as
``recsys_evaluate`` builds it, so the targets and each target's history are identical; the
metrics come from ``recsys.evaluation.ranking_metrics``. A peer model only has to score the whole
catalogue for a batch of targets; this module removes the items of each target's history
(everything the user interacted with before the target) and ranks the rest.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recsys.evaluation import ranking_metrics  # noqa: E402  (pure Python: importable without Django)
from recsys.evaluation.splits import Interaction, Split, Target, loo, read_events, read_items, stream  # noqa: E402

PROTOCOLS = ("loo", "stream")
# Targets scored per call: a (batch, catalogue) float32 matrix stays a few MB on ML-100K.
SCORE_BATCH = 512

# scores(targets) -> (len(targets), len(catalogue)) array, columns in catalogue order.
Scorer = Callable[[Sequence[Target]], np.ndarray]


def load(events_csv: str | Path, items_csv: str | Path) -> tuple[list[Interaction], list[str]]:
    """Events and catalogue from the CSVs ``recsys_evaluate`` reads; events on items missing
    from the catalogue are dropped, as ``recsys.evaluation.runner.evaluate`` drops them."""
    catalogue = [row.item_id for row in read_items(items_csv)]
    known = set(catalogue)
    events = [e for e in read_events(events_csv) if e.item in known]
    return events, catalogue


def make_split(events: list[Interaction], protocol: str, validation: bool) -> Split:
    if protocol == "loo":
        return loo(events, validation=validation)
    if protocol == "stream":
        return stream(events, validation=validation)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def user_sequences(train: Sequence[Interaction]) -> dict[str, list[str]]:
    """Each user's training items in time order (``Split.train`` is already time-sorted)."""
    seqs: dict[str, list[str]] = {}
    for e in train:
        seqs.setdefault(e.user, []).append(e.item)
    return seqs


def evaluate(scores: Scorer, split: Split, catalogue: Sequence[str], k: int = 10) -> dict[str, float]:
    """HR/NDCG/MRR@k, coverage and novelty over full rankings, history excluded, computed
    exactly as ``recsys_evaluate`` computes its rows (``ranking_metrics.Accumulator``)."""
    index = {item: i for i, item in enumerate(catalogue)}
    acc = ranking_metrics.Accumulator(k)
    for start in range(0, len(split.targets), SCORE_BATCH):
        batch = split.targets[start:start + SCORE_BATCH]
        matrix = np.asarray(scores(batch), dtype=np.float64)
        if matrix.shape != (len(batch), len(catalogue)):
            raise ValueError(f"scorer returned {matrix.shape}, expected {(len(batch), len(catalogue))}")
        for row, target in zip(matrix, batch):
            seen = [index[h.item] for h in target.history if h.item in index]
            row[seen] = -np.inf
            top = np.argpartition(-row, min(k, len(row) - 1))[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            acc.add(target.item, [catalogue[i] for i in top if np.isfinite(row[i])])
    item_users = Counter(item for _, item in {(e.user, e.item) for e in split.train})
    n_users = len({e.user for e in split.train}) or 1
    return acc.result(len(catalogue), item_users, n_users)
