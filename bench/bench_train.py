"""Training cost of the sequential model against catalogue size: full vs sampled softmax.

    OMP_NUM_THREADS=1 nice -n 10 python -m bench.bench_train [--items 2000,20000,100000] [--batches 4]

Synthetic logs of one shape at every catalogue size (visitors of 20-60 engagements, items drawn
from a Zipf popularity, random 384-d text embeddings as the catalogue's), the product's
training step (``recsys.seqmodel._batch_loss``, backward, Adam) with the strategy's default
network (``NextItem.DEFAULT_CONFIG``). A few batches are timed after one warm-up batch and the
cost per trained position (one event) is extrapolated to 100,000 events: per epoch, and for a
whole default training (epochs x ensemble members). Full-softmax batches are cut to at most
``--max-logits`` position x item scores (memory: the logits and their gradient of a 128-row
batch at 100,000 items would take 5 GB); the transformer's cost per position barely depends
on the batch size, so the per-event figure holds. One thread, as a batch worker trains; the
figures are the process's CPU time (less moved by other jobs on a shared machine than wall time).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import django
import numpy as np
import torch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django.setup()  # the strategy's default config lives on a Django model's module; no database is used

from recsys import seqmodel  # noqa: E402
from recsys.strategies.sequential import NextItem  # noqa: E402

TEXT_DIM = 384


def synthetic_rows(n_items: int, max_len: int, rows: int, seed: int) -> torch.Tensor:
    """``rows`` training windows (max_len + 1 indices, right-padded) of Zipf-popular items."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    p = ranks ** -0.8
    p /= p.sum()
    seqs = []
    for _ in range(rows):
        length = int(rng.integers(20, 61))
        seqs.append(list(rng.choice(n_items, size=length, p=p) + 1))
    return torch.from_numpy(seqmodel._windows(seqs, max_len)[:rows])


def time_training(n_items: int, loss: str, cfg_dict: dict, batches: int, max_logits: int) -> dict:
    cfg = seqmodel.SeqConfig.from_dict({**cfg_dict, "loss": loss})
    full = cfg.full_softmax(n_items)
    batch_rows = cfg.batch_size
    if full:
        batch_rows = max(1, min(batch_rows, max_logits // (n_items * cfg.max_len)))
    torch.manual_seed(0)
    text = np.random.default_rng(1).normal(size=(n_items, TEXT_DIM)).astype(np.float32)
    net = seqmodel._Net(n_items, cfg, text)
    sampler = None if full else seqmodel.NegativeSampler(n_items, cfg.negatives_in_batch, cfg.negatives_uniform)
    opts = seqmodel._optimizers(net, cfg, sparse=not full)
    rows = synthetic_rows(n_items, cfg.max_len, batch_rows * (batches + 1), seed=n_items)
    net.train()
    positions, seconds = 0, 0.0
    for b in range(batches + 1):
        batch = rows[b * batch_rows:(b + 1) * batch_rows]
        started = time.process_time()
        value, count = seqmodel._batch_loss(net, batch, sampler)
        for opt in opts:
            opt.zero_grad()
        value.backward()
        for opt in opts:
            opt.step()
        if b:  # the first batch warms allocator and kernels up
            seconds += time.process_time() - started
            positions += count
    per_100k = seconds / positions * 100_000
    return {"items": n_items, "loss": "full" if full else "sampled", "batch_rows": batch_rows,
            "positions": positions, "epoch_s_per_100k": per_100k,
            "training_min_per_100k": per_100k * cfg.epochs * max(1, cfg.ensemble) / 60}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="2000,20000,100000")
    ap.add_argument("--losses", default="full,sampled")
    ap.add_argument("--batches", type=int, default=4, help="timed batches per row (after one warm-up)")
    ap.add_argument("--max-logits", type=int, default=25_000_000, help="full softmax: positions x items per batch")
    ap.add_argument("--set", action="append", default=[], help="SeqConfig field=value (JSON value) over the strategy's default")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = {k: v for k, v in NextItem.DEFAULT_CONFIG.items() if k in seqmodel.SeqConfig.__dataclass_fields__}
    for s in args.set:
        key, _, raw = s.partition("=")
        cfg[key] = json.loads(raw)
    sizes = [int(s) for s in args.items.split(",")]
    print(f"network: d={cfg['d']} layers={cfg['layers']} max_len={cfg['max_len']} batch={cfg['batch_size']} "
          f"epochs={cfg['epochs']} ensemble={cfg['ensemble']} negatives={cfg.get('negatives_in_batch')}+"
          f"{cfg.get('negatives_uniform')}; threads={torch.get_num_threads()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print(f"{args.batches} timed batches per row (CPU time), extrapolated to 100,000 trained events (positions)")
    print(f"{'items':>8} {'loss':>8} {'rows/batch':>10} {'s/epoch/100k ev':>16} {'min/training/100k ev':>21}")
    results: dict[str, list[dict]] = {}
    for loss in args.losses.split(","):
        for n in sizes:
            r = time_training(n, loss, cfg, args.batches, args.max_logits)
            results.setdefault(loss, []).append(r)
            print(f"{r['items']:>8} {r['loss']:>8} {r['batch_rows']:>10} {r['epoch_s_per_100k']:>16.1f} "
                  f"{r['training_min_per_100k']:>21.1f}", flush=True)
    for loss, rows in results.items():
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            slope = (last["epoch_s_per_100k"] - first["epoch_s_per_100k"]) / ((last["items"] - first["items"]) / 10_000)
            ratio = last["epoch_s_per_100k"] / first["epoch_s_per_100k"]
            print(f"slope {loss}: {slope:+.2f} s per epoch per 100k events per 10k extra items "
                  f"({first['items']} -> {last['items']} items: x{ratio:.2f})")
    if "full" in results and "sampled" in results:
        for f, s in zip(results["full"], results["sampled"]):
            print(f"{f['items']:>8} items: full / sampled = {f['epoch_s_per_100k'] / s['epoch_s_per_100k']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
