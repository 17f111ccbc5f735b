"""Fusion-weight tuning: collect each strategy's candidates once per target, re-fuse offline.

A slot's list is ``ranking.fuse`` of its strategies' candidates: each strategy's scores are
normalised, then summed with the slot's weights. Changing the weights changes nothing the
strategies return, so the evaluation collects ``engine.gather`` once per (validation) target
and this module replays the fusion in NumPy for every weight vector of a grid, scoring
NDCG@K of the held-out items: hundreds of weightings in seconds instead of one full run each.

The replay is the engine's own arithmetic (``ranking.fuse``): max-normalisation per strategy
(a strategy whose best score is <= 0 adds nothing), a strategy with weight 0 proposes nothing,
ties break on item id. The engine's exclusions are applied at collection (the strategies
exclude them themselves; what is left is dropped here). Slot rules, freshness and MMR are not
replayed: tune slots without them (the evaluation's slots have none).

Choose weights on validation targets (``recsys_evaluate --validation --tune-weights``) and
confirm them once on test. Without Django: ``python -m recsys.evaluation.fusion_search SCORES.json``
searches a saved collection again (another grid or normalisation).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

# Relative weights tried for every strategy but the anchor (the slot's heaviest, kept as is:
# fusion is scale-free, so fixing one weight loses nothing).
DEFAULT_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
# Above this many grid points the search goes one strategy at a time (coordinate ascent).
MAX_EXHAUSTIVE = 20000


# -- collection ------------------------------------------------------------------------------

def collect_one(per_strategy: dict[str, tuple[float, list]], exclude: set[str], target: str) -> dict[str, Any]:
    """One target's record: each strategy's candidates as [item_id, raw score], in its order."""
    return {"target": target,
            "cands": {sid: [[c.item_id, float(c.score)] for c in cands if c.item_id not in exclude]
                      for sid, (_, cands) in per_strategy.items()}}


def collection(k: int, weights: dict[str, float], records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"k": k, "weights": {s: float(w) for s, w in weights.items()}, "targets": records}


# -- replay -----------------------------------------------------------------------------------

def _normalise(scores: np.ndarray, how: str) -> np.ndarray:
    """One strategy's scores (in its candidate order) -> fusion inputs.

    ``max``: ``ranking.fuse``'s, max(score, 0) / best, nothing when best <= 0. ``rank``:
    1 / (1 + position), a scale-free alternative (reciprocal-rank fusion without its constant).
    """
    if how == "max":
        top = scores.max() if scores.size else 0.0
        return np.maximum(scores, 0.0) / top if top > 0 else np.zeros_like(scores)
    if how == "rank":
        order = np.argsort(-scores, kind="stable")
        out = np.empty_like(scores)
        out[order] = 1.0 / (1.0 + np.arange(scores.size))
        return out
    raise ValueError(f"unknown normalisation {how!r}; choose 'max' or 'rank'")


@dataclass
class Replay:
    """The collected candidates as dense arrays: T targets x M candidate slots x S strategies."""

    strategies: list[str]
    scores: np.ndarray  # (T, M, S) normalised score, 0 where a strategy did not propose the item
    proposed: np.ndarray  # (T, M, S) bool: the strategy proposed the item (and counts: best > 0)
    target_col: np.ndarray  # (T,) column of the held-out item, -1 when no strategy proposed it
    k: int

    @classmethod
    def build(cls, data: dict[str, Any], strategies: Sequence[str] | None = None, normalise: str = "max") -> "Replay":
        strategies = list(strategies or data["weights"])
        records = data["targets"]
        width = max([len({i for sid in strategies for i, _ in r["cands"].get(sid, [])}) for r in records] + [1])
        scores = np.zeros((len(records), width, len(strategies)))
        proposed = np.zeros(scores.shape, dtype=bool)
        target_col = np.full(len(records), -1)
        for t, rec in enumerate(records):
            # Columns in item-id order: a lower column wins a tie, as in ranking.fuse.
            items = sorted({i for sid in strategies for i, _ in rec["cands"].get(sid, [])})
            col = {i: n for n, i in enumerate(items)}
            target_col[t] = col.get(rec["target"], -1)
            for s, sid in enumerate(strategies):
                cands = rec["cands"].get(sid) or []
                if not cands:
                    continue
                raw = np.array([score for _, score in cands], dtype=np.float64)
                if normalise == "max" and raw.max() <= 0:
                    continue  # fuse skips the strategy
                cols = [col[i] for i, _ in cands]
                scores[t, cols, s] = _normalise(raw, normalise)
                proposed[t, cols, s] = True
        return cls(strategies, scores, proposed, target_col, int(data["k"]))

    def ranks(self, weights: Sequence[float]) -> np.ndarray:
        """0-based rank of each target in its fused list; a large number when absent."""
        w = np.asarray(weights, dtype=np.float64)
        present = (self.proposed & (w > 0)).any(axis=2)
        fused = np.where(present, self.scores @ w, -np.inf)
        t = np.arange(len(fused))
        col = np.maximum(self.target_col, 0)
        mine = fused[t, col]
        found = (self.target_col >= 0) & present[t, col]
        cols = np.arange(fused.shape[1])
        ahead = (fused > mine[:, None]) | ((fused == mine[:, None]) & (cols[None, :] < col[:, None]))
        ranks = (ahead & present).sum(axis=1)
        return np.where(found, ranks, np.iinfo(np.int64).max)

    def per_target_ndcg(self, weights: Sequence[float]) -> np.ndarray:
        r = self.ranks(weights)
        hit = r < self.k
        return np.where(hit, 1.0 / np.log2(np.where(hit, r, 0) + 2.0), 0.0)

    def score(self, weights: Sequence[float]) -> dict[str, float]:
        r = self.ranks(weights)
        n = max(len(r), 1)
        return {f"NDCG@{self.k}": float(self.per_target_ndcg(weights).sum() / n),
                f"HR@{self.k}": float((r < self.k).sum() / n)}


# -- search -----------------------------------------------------------------------------------

def _objective(replay: Replay, w: Sequence[float]) -> float:
    return float(replay.per_target_ndcg(w).mean()) if len(replay.target_col) else 0.0


def search(replay: Replay, current: Sequence[float], grid: Iterable[float] = DEFAULT_GRID,
           free: Sequence[int] | None = None) -> tuple[list[float], float]:
    """The weights with the best mean NDCG@K, the anchor (heaviest current weight) fixed.

    ``free``: indexes of the strategies searched (default: all but the anchor); the others
    keep their current weight. Every combination of the grid when there are at most
    MAX_EXHAUSTIVE, else coordinate ascent from the current weights until no step helps.
    A tie keeps the current weights, then the earlier grid point: no change without a gain.
    """
    current = [float(w) for w in current]
    grid = sorted(set(float(g) for g in grid))
    anchor = int(np.argmax(current))
    free = [i for i in (range(len(current)) if free is None else free) if i != anchor]
    best_w, best = list(current), _objective(replay, current)
    if len(grid) ** len(free) <= MAX_EXHAUSTIVE:
        for combo in itertools.product(grid, repeat=len(free)):
            w = list(current)
            for i, g in zip(free, combo):
                w[i] = g
            value = _objective(replay, w)
            if value > best + 1e-12:
                best_w, best = w, value
        return best_w, best
    improved = True
    while improved:
        improved = False
        for i in free:
            for g in grid:
                w = list(best_w)
                w[i] = g
                value = _objective(replay, w)
                if value > best + 1e-12:
                    best_w, best, improved = w, value, True
    return best_w, best


def tune(data: dict[str, Any], grid: Iterable[float] = DEFAULT_GRID, normalise: str = "max") -> dict[str, Any]:
    """Search the collected slot's weights; what the command prints and writes.

    Strategies that proposed nothing for any target (content/query and similar/items without a
    query or a page item) keep their weights: the targets say nothing about them.
    """
    names = list(data["weights"])
    current = [data["weights"][s] for s in names]
    replay = Replay.build(data, names, normalise)
    active = [i for i in range(len(names)) if replay.proposed[:, :, i].any()]
    best_w, _ = search(replay, current, grid, free=active)
    before, after = replay.score(current), replay.score(best_w)
    # Paired standard error of the gain over targets: is it more than noise?
    diff = replay.per_target_ndcg(best_w) - replay.per_target_ndcg(current)
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return {"normalise": normalise, "targets": len(data["targets"]), "k": replay.k,
            "searched": [names[i] for i in active], "grid": sorted(set(float(g) for g in grid)),
            "current": {"weights": dict(zip(names, current)), **before},
            "best": {"weights": dict(zip(names, best_w)), **after},
            "gain": {f"NDCG@{replay.k}": after[f"NDCG@{replay.k}"] - before[f"NDCG@{replay.k}"],
                     "paired_se": se}}


def describe(result: dict[str, Any]) -> str:
    k = result["k"]
    lines = [f"fusion weights ({result['normalise']}-normalised, {result['targets']} targets, "
             f"searched {', '.join(result['searched'])}):"]
    for label in ("current", "best"):
        r = result[label]
        ws = ", ".join(f"{s} {w:g}" for s, w in r["weights"].items())
        lines.append(f"  {label:<8} NDCG@{k} {r[f'NDCG@{k}']:.4f}  HR@{k} {r[f'HR@{k}']:.4f}  {{{ws}}}")
    g = result["gain"]
    lines.append(f"  gain     NDCG@{k} {g[f'NDCG@{k}']:+.4f} (paired s.e. {g['paired_se']:.4f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Search fusion weights again on a saved collection.")
    ap.add_argument("scores", help="the JSON written by recsys_evaluate --tune-weights PATH")
    ap.add_argument("--grid", default=",".join(str(g) for g in DEFAULT_GRID))
    ap.add_argument("--normalise", choices=["max", "rank"], default="max")
    args = ap.parse_args(argv)
    with open(args.scores, encoding="utf-8") as fh:
        data = json.load(fh)
    result = tune(data, [float(g) for g in args.grid.split(",")], args.normalise)
    print(describe(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
