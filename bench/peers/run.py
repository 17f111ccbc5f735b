"""Measure the peers on LiveRec's split and protocol: each tuned on the validation split, then
retrained on the test split's training part with the chosen settings and scored on test.

    python -m bench.peers.run --events bench/out/ml100k/EVENTS.csv --items bench/out/ml100k/ITEMS.csv \
        --protocol loo stream --models als bpr gru4rec sasrec --out bench/out/peers.json

Tuning, per protocol and model: every grid point trains on the validation split's training
part (``splits.loo/stream(validation=True)``) and is scored on the validation targets. The
iterative models (BPR, SASRec, GRU4Rec) are scored every ``every`` epochs and stop after
``patience`` checks without a better validation NDCG@10 (or at ``max_epochs``); their best
epoch count is part of the chosen setting. The grid point with the best validation NDCG@10
is retrained on the test split's training part (everything before the targets, validation
included, as LiveRec's models are) for that many epochs and scored on test.

Every grid point and every test result is written to ``--out`` as soon as it exists, so a
run that is stopped resumes where it was and ``python -m bench.peers.compare`` reprints the
table without training. Results are kept per data fingerprint (the CSVs' SHA-1).
"""
from __future__ import annotations

import os

# One thread everywhere (the machine is shared): before numpy/torch/implicit load their pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from . import protocol  # noqa: E402

K = 10
METRIC = f"NDCG@{K}"


@dataclass
class Spec:
    label: str
    factory: str  # attribute of bench.peers.models
    grid: list[dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    max_epochs: int = 0  # 0: not iterative (ALS: iterations are a grid parameter)
    every: int = 5
    patience: int = 2


# The grids are small on purpose: one CPU thread at nice 19 on a shared 2-core machine, where
# one SASRec or GRU4Rec epoch on ML-100K takes 11-20 s. The sequence models tune lr and the
# epoch count at RecBole's default dropout (SASRec 0.5, GRU4Rec 0.3); what we could not afford
# (dropout, depth, width, max_len, more epochs at lower lr) is listed in bench/peers/README.md.
PEERS: dict[str, Spec] = {
    # Not a peer: recsys_evaluate's own popularity row, recomputed here as a check of the harness.
    "popularity": Spec("popularity (LiveRec built-in, via this harness)", "Popularity", [{}]),
    "als": Spec("ALS (implicit 0.7.3)", "ALS",
                [{"factors": f, "regularization": r, "alpha": a, "iterations": i}
                 for f in (64, 128, 256) for r in (0.01, 0.1, 1.0, 10.0, 100.0) for a in (1.0, 10.0) for i in (15, 30)]),
    "bpr": Spec("BPR (RecBole 1.2.1 model)", "BPR",
                [{"embedding_size": 64, "lr": lr} for lr in (1e-3, 5e-3)]
                + [{"embedding_size": 64, "lr": 5e-3, "weight_decay": 1e-6}],
                max_epochs=200, every=5, patience=3),
    "gru4rec": Spec("GRU4Rec (RecBole 1.2.1 model, CE all positions)", "Sequential",
                    [{"lr": lr, "dropout": 0.3} for lr in (5e-3, 2e-3)],
                    fixed={"arch": "gru4rec"}, max_epochs=50, every=5, patience=2),
    "sasrec": Spec("SASRec (RecBole 1.2.1 model, 2x64, CE all positions)", "Sequential",
                   [{"lr": lr, "dropout": 0.5} for lr in (5e-3, 2e-3)],
                   fixed={"arch": "sasrec"}, max_epochs=50, every=5, patience=2),
}


def fingerprint(*paths: str | Path) -> str:
    h = hashlib.sha1()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


class Cache:
    """The results file: {fingerprint: {"meta": ..., protocol: {model: {...}}}}.

    Several runs (e.g. one per protocol) may share the file: ``save`` re-reads it under a lock
    and writes back only the sections this run touched.
    """

    def __init__(self, path: str | Path, data: str, meta: dict | None = None):
        self.path = Path(path)
        self.data_key = data
        self.meta = meta
        self.touched: dict[tuple[str, str], dict] = {}

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def stored(self, proto: str, model: str) -> dict:
        """What the file holds now for one model (other runs' points included)."""
        return self._read().get(self.data_key, {}).get(proto, {}).get(model, {"grid": {}})

    def section(self, proto: str, model: str) -> dict:
        """One model's results, which ``save`` will write back (merged)."""
        current = self.stored(proto, model)
        self.touched[(proto, model)] = current
        return current

    def save(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            everything = self._read()
            data = everything.setdefault(self.data_key, {})
            if self.meta:
                data["meta"] = {**self.meta, "updated": round(time.time())}
            for (proto, model), section in self.touched.items():
                # Merge: another run may have added grid points or tests to the same model.
                stored = data.setdefault(proto, {}).get(model, {})
                merged = {**stored, **section}
                for part in ("grid", "tests"):
                    merged[part] = {**stored.get(part, {}), **section.get(part, {})}
                data[proto][model] = merged
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(everything, indent=1, sort_keys=True))
            tmp.replace(self.path)


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def _round(m: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in m.items()}


def train_and_score(spec: Spec, params: dict, split, catalogue, threads: int, *, epochs: int | None,
                    log: Callable[[str], None]) -> dict:
    """Train one setting on ``split.train``. ``epochs=None``: early stopping on ``split``'s
    targets (validation); otherwise exactly that many epochs, scored once at the end."""
    from . import models

    started = time.monotonic()
    kwargs = {**spec.fixed, **params}
    if spec.factory == "ALS":
        kwargs["threads"] = threads
    model = getattr(models, spec.factory)(catalogue, split.train, **kwargs)
    curve: list[tuple[int, float]] = []
    best: tuple[float, int, dict] | None = None
    stale = 0
    limit = epochs if epochs is not None else spec.max_epochs
    for epoch in model.epochs(limit):
        # Scored: ALS's single fit; every ``every`` epochs while tuning; the last epoch.
        if spec.max_epochs and epoch != limit and (epochs is not None or epoch % spec.every):
            continue
        result = protocol.evaluate(model.scores, split, catalogue, K)
        curve.append((epoch, round(result[METRIC], 5)))
        log(f"    epoch {epoch}: {METRIC} {result[METRIC]:.4f}  ({time.monotonic() - started:.0f} s)")
        if best is None or result[METRIC] > best[0]:
            best, stale = (result[METRIC], epoch, result), 0
        else:
            stale += 1
            if epochs is None and stale >= spec.patience:
                break
    assert best is not None
    return {"metrics": _round(best[2]), "epochs": best[1], "curve": curve,
            "seconds": round(time.monotonic() - started, 1)}


def run_model(name: str, proto: str, events, catalogue, cache: Cache, threads: int, grid_limit: int | None,
              log: Callable[[str], None], max_epochs: int | None = None, points: list[int] | None = None) -> dict:
    """Tune ``name`` on ``proto``'s validation split, then score the chosen setting on test.

    ``points`` (1-based grid indices) splits a grid over several runs: such a run tunes only
    those points and scores each of them on test, so that whichever wins, its test result is
    there; the choice is made over every cached point of the grid (``grid_limit`` first ones).
    """
    spec = PEERS[name]
    if max_epochs and spec.max_epochs:
        spec = replace(spec, max_epochs=min(spec.max_epochs, max_epochs), every=min(spec.every, max_epochs))
    section = cache.section(proto, name)
    section["label"] = spec.label
    section.setdefault("tests", {})
    grid = spec.grid[:grid_limit] if grid_limit else spec.grid
    todo = [(i, p) for i, p in enumerate(grid, 1) if points is None or i in points]
    val = protocol.make_split(events, proto, validation=True)
    test_split = None

    def test_run(key: str) -> dict:
        nonlocal test_split
        test_split = test_split or protocol.make_split(events, proto, validation=False)
        epochs = section["grid"][key]["epochs"]
        log(f"  [{proto} {name}] test with {key}" + (f", {epochs} epochs" if spec.max_epochs else ""))
        result = train_and_score(spec, json.loads(key), test_split, catalogue, threads,
                                 epochs=epochs if spec.max_epochs else None, log=log)
        result["epochs_trained"] = epochs
        section["tests"][key] = result
        cache.save()
        return result

    for i, params in todo:
        key = _key(params)
        if key not in section["grid"]:
            log(f"  [{proto} {name}] validation {i}/{len(grid)} {key}")
            section["grid"][key] = train_and_score(spec, params, val, catalogue, threads, epochs=None, log=log)
            cache.save()
        if points is not None and key not in section["tests"]:
            test_run(key)
    stored = cache.stored(proto, name)
    for part in ("grid", "tests"):
        section[part] = {**stored.get(part, {}), **section[part]}
    tried = {k: v for k, v in section["grid"].items() if k in {_key(p) for p in grid}}
    best_key = max(tried, key=lambda k: tried[k]["metrics"][METRIC])
    chosen = {"params": json.loads(best_key), "epochs": tried[best_key]["epochs"],
              "validation": tried[best_key]["metrics"]}
    test = section["tests"].get(best_key)
    if test is None and (section.get("test") or {}).get("chosen") == chosen:
        test = section["test"]  # written before results were kept per grid point
    if test is None or test.get("epochs_trained", chosen["epochs"]) != chosen["epochs"]:
        test = test_run(best_key)
    section["test"] = {**test, "chosen": chosen}
    cache.save()
    log(f"  [{proto} {name}] test {METRIC} {test['metrics'][METRIC]:.4f} HR@{K} {test['metrics'][f'HR@{K}']:.4f}")
    return section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--protocol", nargs="+", default=list(protocol.PROTOCOLS), choices=protocol.PROTOCOLS)
    ap.add_argument("--models", nargs="+", default=list(PEERS), choices=list(PEERS))
    ap.add_argument("--out", default="bench/out/peers.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grid-limit", type=int, default=None, help="use only the first N grid points of each model")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap the iterative models' epochs (quick runs)")
    ap.add_argument("--points", type=int, nargs="+", default=None,
                    help="tune (and test) only these 1-based grid points: one grid split over parallel runs")
    args = ap.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    # Also when numpy was imported before this module could set OPENBLAS_NUM_THREADS (tests).
    threadpool_limits(args.threads)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    events, catalogue = protocol.load(args.events, args.items)
    data = fingerprint(args.events, args.items)
    cache = Cache(args.out, data, meta={"events": len(events), "items": len(catalogue), "k": K})
    log(f"{len(events)} events, {len(catalogue)} items, data {data}; results in {args.out}")
    for proto in args.protocol:
        for name in args.models:
            run_model(name, proto, events, catalogue, cache, args.threads, args.grid_limit, log,
                      max_epochs=args.max_epochs, points=args.points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
