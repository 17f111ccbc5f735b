"""Query embeddings (``recsys.services.queries.embed_query``): a new text against a repeated one.

    python -m devstack run -- python bench/bench_query_cache.py [--queries 200]

Three passes over the same distinct texts in one process, same encoder, same machine:
a miss (the encoder runs), a hit in the in-process LRU, and a hit in the shared cache (LRU
dropped, as in another web or worker process). Prints the median per query of each pass and
the ratios, so the figures compare within one run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

from recsys.encoders import get_encoder  # noqa: E402
from recsys.services import queries  # noqa: E402

WORDS = ["space", "adventure", "romance", "war", "comedy", "noir", "heist", "robots", "musical", "western",
         "family", "thriller", "pirates", "detective", "aliens", "vampires"]


def timed(texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        t0 = time.perf_counter()
        queries.embed_query(text)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    get_encoder().encode(["warm-up"])
    run = uuid.uuid4().hex[:6]
    texts = [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]} {run}{i}" for i in range(args.queries)]
    queries.forget_cached()
    miss = statistics.median(timed(texts))
    lru = statistics.median(timed(texts))
    queries.forget_cached()
    shared = statistics.median(timed(texts))
    print(f"embed_query, {args.queries} distinct texts, median ms/query: new {miss:.3f}, "
          f"repeat in-process {lru:.4f}, repeat via shared cache {shared:.3f}")
    print(f"ratio new/shared-cache {miss / shared:.0f}x, new/in-process {miss / lru:.0f}x")


if __name__ == "__main__":
    main()
