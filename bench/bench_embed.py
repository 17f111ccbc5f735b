"""Embedding throughput: items/s through the real Celery batch worker vs a bare
``model.encode`` of the same texts in this process.

    LIVEREC_STACK_DIR=.stack/x python -m devstack run -- python bench/bench_embed.py [--repeat 3]

Loads the 1,682 MovieLens-100K films into the catalogue projection of the dev database,
starts the real workers (``tests.stack.start_stack``), warms the worker's model, then per
round: a bare encode here, and ``recsys_embed --all`` semantics (enqueue every item, wait
until every row carries the current encoder's vector). Prints the best round of each, as
both sides compete for the same 2 shared cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402


def load_catalogue() -> None:
    from demo.catalogue import movielens
    from demo.catalogue.models import Film
    from recsys.services import items

    if Film.objects.count() < 1682:
        Film.objects.bulk_create([Film(ml_id=f.ml_id, title=f.title, year=f.year, genres=f.genres)
                                  for f in movielens.films()], batch_size=1000, ignore_conflicts=True)
    items.sync_from_adapters()


def wait_embedded(total: int, timeout: float = 600) -> None:
    from recsys.services import items

    deadline = time.monotonic() + timeout
    # Done means every vector written and the HNSW index usable (bulk runs build it last).
    while items.embedded_count() < total or not items.index_ready():
        if time.monotonic() > deadline:
            raise TimeoutError("the batch worker did not finish")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    load_catalogue()

    from recsys.encoders import get_encoder
    from recsys.models import Item
    from recsys.services import items
    from tests.stack import start_stack

    encoder = get_encoder()
    rows = list(Item.objects.order_by("pk").only("pk", "title", "text", "categories"))
    texts = [it.embedding_text() for it in rows]
    pks = [it.pk for it in rows]
    n = len(texts)
    encoder.model.encode(texts[:64])  # load + warm

    stack = start_stack(dict(connection.settings_dict), web=False)
    try:
        # Warm the worker's model (its first task loads it: not throughput) with a first,
        # untimed, embedding of the whole catalogue.
        items.enqueue_embedding(items.stale_item_pks())
        wait_embedded(n)
        bare, worker = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            encoder.model.encode(texts, batch_size=items.EMBED_BATCH, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
            bare.append(n / (time.perf_counter() - t))
            Item.objects.update(embedding_model="")
            connection.close()
            t = time.perf_counter()
            items.enqueue_embedding(pks)
            wait_embedded(n)
            worker.append(n / (time.perf_counter() - t))
            print(f"  round: bare {bare[-1]:.0f} items/s, worker {worker[-1]:.0f} items/s", flush=True)
    finally:
        stack.stop()
    b, w = max(bare), max(worker)
    print(f"encoder {encoder.name}, {n} items, batch {items.EMBED_BATCH}")
    print(f"bare model.encode: {b:.0f} items/s   through the batch worker: {w:.0f} items/s   ratio {w / b:.2f}")


if __name__ == "__main__":
    main()
