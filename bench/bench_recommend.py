"""Recommendation latency of the for-you slot on a synthetic clustered catalogue.

    LIVEREC_STACK_DIR=.stack/bench python -m devstack run -- python bench/bench_recommend.py 100000 300000
    ... bench_recommend.py --reuse 100000     # keep the catalogue and index an earlier run built
    ... bench_recommend.py --halfvec 100000   # also time a halfvec HNSW index (built, then dropped)
    ... bench_recommend.py --no-sequential 100000   # without the sequence model
    ... bench_recommend.py --overlap 0 100000   # strategies inline (default here: 3 threads)
    ... bench_recommend.py --anchor 100000   # also repeat the anchors' bare HNSW measurement

For each size: replaces the catalogue's ``bench-*`` items with N synthetic 384-d items
(random cluster centres + Gaussian noise, unit length) loaded with binary COPY, rebuilds the
engine's HNSW index (maintenance_work_mem 1GB) and times the build, gives 200 synthetic
visitors 20 engagements each inside two or three clusters (run through the real interest and
co-occurrence projections), trains the sequential/next-item model on them (its default shape,
an ensemble of two, but one epoch, none past 200,000 items: the bench times inference over
the whole catalogue, not quality; ``--no-sequential`` leaves it out), then times ``recommend(visitor, "for-you")`` and, in the same
process as baseline, a bare pgvector HNSW top-10 query. Prints figures; asserts nothing.

``--anchor`` repeats the reference pgvector measurement of docs/performance.md (pgvector
HNSW, 100,000 x 384-d, top-10 cosine: p50 3.1 ms), on its protocol as far as we can tell:
uniformly random unit vectors, no clusters, random queries, a default index (m=16,
ef_construction=64, ef_search=40). The issue's target (for-you p99 under 20 ms "where HNSW
alone answers in about 3 ms") is then also shown scaled by how fast this run's machine does
that same query. The bench's own baseline query runs on the clustered catalogue, which HNSW
searches 2-3x faster than random data, so it is not the anchor's figure.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

# Strategy reads overlapped with the sequence model (recsys.overlap), as a web process serving
# a large catalogue would run; --overlap 0 runs everything inline (the product default).
OVERLAP = sys.argv[sys.argv.index("--overlap") + 1] if "--overlap" in sys.argv else "3"
os.environ["LIVEREC_STRATEGY_THREADS"] = OVERLAP

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

DIM = 384
VISITORS = 200
EVENTS_PER_VISITOR = 20
WARMUP = 30
RUNS = 400


def catalogue(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clusters = max(10, n // 500)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    return centres, labels


def chunk_vectors(centres, labels, start, stop, rng):
    vecs = centres[labels[start:stop]] + 0.6 / np.sqrt(DIM) * rng.standard_normal((stop - start, DIM)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def load_items(n: int, encoder_name: str) -> tuple[float, float, np.ndarray, np.ndarray]:
    from pgvector.psycopg import register_vector

    from recsys.models import Item
    from recsys.services.vectors import index_name

    centres, labels = catalogue(n)
    rng = np.random.default_rng(11)
    table = Item._meta.db_table
    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(f"DROP INDEX IF EXISTS {index_name(DIM)}")
        cur.execute(f"DELETE FROM {table} WHERE item_id LIKE 'bench-%%'")
    now = timezone.now()
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} (item_id, title, text, categories, properties, url, available, source, "
                      "embedding, embedding_model, created_at, updated_at) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["varchar", "varchar", "text", "varchar[]", "jsonb", "varchar", "bool", "varchar",
                            "vector", "varchar", "timestamptz", "timestamptz"])
            for start in range(0, n, 20000):
                stop = min(n, start + 20000)
                vecs = chunk_vectors(centres, labels, start, stop, rng)
                for i in range(start, stop):
                    copy.write_row((f"bench-{i}", f"Bench item {i}", "", [f"cat{labels[i] % 40}"], "{}", "", True,
                                    "bench", vecs[i - start], encoder_name, now, now))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 1")
        cur.execute(f"CREATE INDEX {index_name(DIM)} ON {table} USING hnsw ((embedding::vector({DIM})) "
                    f"vector_cosine_ops) WHERE vector_dims(embedding) = {DIM}")
        cur.execute(f"ANALYZE {table}")
    build_s = time.perf_counter() - t0
    return load_s, build_s, centres, labels


def make_visitors(n: int, labels: np.ndarray) -> list[str]:
    """VISITORS visitors, each browsing 2-3 clusters; events go through the real projections."""
    from recsys.models import ItemAssociation, ProjectionCursor, VisitorProfile
    from recsys.services import cooccurrence, interests
    from tracking.models import Event

    from django.db import transaction

    from tracking import privacy

    # A fresh bench log and projections (the demo's own rows stay). Events leave the
    # append-only log only through the privacy service, with what was derived from them.
    for old in Event.objects.filter(visitor_id__startswith="bench-").values_list("visitor_id", flat=True).distinct():
        privacy.forget_visitor(old)
    with transaction.atomic():
        VisitorProfile.objects.filter(visitor_id__startswith="bench-").delete()
        ItemAssociation.objects.filter(item_a__startswith="bench-").delete()
        ProjectionCursor.objects.filter(name__in=["interests", "cooccurrence"]).delete()
    by_cluster: dict[int, np.ndarray] = {}
    rng = random.Random(3)
    clusters = int(labels.max()) + 1
    popular = rng.sample(range(clusters), min(30, clusters))  # where visitors gather
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(clusters + 1))
    for c in popular:
        by_cluster[c] = order[bounds[c]:bounds[c + 1]][:200]
    start = timezone.now() - timedelta(hours=3)
    events, visitors = [], []
    for v in range(VISITORS):
        vid = f"bench-{uuid.uuid4().hex[:12]}"
        visitors.append(vid)
        tastes = rng.sample(popular, rng.choice([2, 3]))
        t = start + timedelta(seconds=rng.randint(0, 3600))
        for _ in range(EVENTS_PER_VISITOR):
            pool = by_cluster[rng.choice(tastes)]
            item = int(pool[min(len(pool) - 1, int(rng.expovariate(1 / 20)))])
            name = rng.choices(["item_viewed", "added_to_cart", "purchased"], [0.85, 0.1, 0.05])[0]
            t += timedelta(seconds=rng.randint(10, 120))
            events.append(Event(name=name, visitor_id=vid, item_id=f"bench-{item}", occurred_at=t, received_at=t,
                                source=Event.Source.IMPORT))
    Event.objects.bulk_create(events, batch_size=2000)
    # The bench owns its projections' state in this database: rebuild both over the whole log.
    t0 = time.perf_counter()
    interests.catch_up()
    t1 = time.perf_counter()
    cooccurrence.catch_up()
    t2 = time.perf_counter()
    print(f"  projections over {len(events)} new events: interests {t1 - t0:.1f} s, co-occurrence {t2 - t1:.1f} s "
          f"({ItemAssociation.objects.count()} association rows, cursors "
          f"{list(ProjectionCursor.objects.values_list('name', flat=True))})")
    return visitors


def train_sequence_model(n: int) -> None:
    """The for-you slot's strongest strategy, trained as the batch task trains it but for one
    epoch (inference cost does not depend on how long it trained)."""
    from recsys.engine import build_strategy
    from recsys.models import TrainedModel
    from recsys.services import sequential

    TrainedModel.objects.filter(name=sequential.MODEL_NAME).delete()
    # Past 200,000 items even one epoch is long (the text projection of every item per batch):
    # the weights stay as initialised, which costs the same per request.
    epochs = 1 if n <= 200_000 else 0
    config = {**build_strategy(sequential.MODEL_NAME).config, "epochs": epochs, "batch_size": 32}
    t0 = time.perf_counter()
    sequential.train_and_store(config, threads=1)
    t1 = time.perf_counter()
    model = sequential.current_model()
    t2 = time.perf_counter()
    searching = model.prepare_search(wait=True)  # timed requests use what a warmed-up process uses
    print(f"  sequence model over {n:,} items (ensemble {config['ensemble']}, {epochs} epoch(s)): trained {t1 - t0:.1f} s, "
          f"loaded {t2 - t1:.1f} s, candidate search {'built in ' + format(time.perf_counter() - t2, '.1f') + ' s' if searching else 'not used (full product)'}")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


CPU: list[float] = []


def time_calls(fn, args_list) -> list[float]:
    """Wall-clock ms per call; CPU ms this process spent per call go to CPU (on a shared,
    loaded machine the wall clock also counts time spent waiting for a core)."""
    out = []
    CPU.clear()
    for args in args_list:
        c0, t0 = time.process_time(), time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - t0) * 1000)
        CPU.append((time.process_time() - c0) * 1000)
    return out


def bench_size(n: int) -> None:
    from recsys.encoders import get_encoder
    from recsys.engine import recommend

    from recsys.models import Item
    from recsys.services.vectors import index_name

    encoder = get_encoder()
    print(f"\n== {n:,} items ({DIM}-d, clustered); LIVEREC['STRATEGY_THREADS'] = {OVERLAP} ==")
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name(DIM)])
        indexed = cur.fetchone() is not None
    if REUSE and indexed and Item.objects.filter(item_id__startswith="bench-").count() == n:
        centres, labels = catalogue(n)
        print("  reusing the catalogue and index loaded by an earlier run (--reuse)")
    else:
        load_s, build_s, centres, labels = load_items(n, encoder.name)
        print(f"  COPY load: {load_s:.1f} s ({n / load_s:,.0f} rows/s); HNSW build (m=16, ef_construction=64, "
              f"maintenance_work_mem 1GB): {build_s:.1f} s")
    visitors = make_visitors(n, labels)
    if SEQUENTIAL:
        train_sequence_model(n)
    else:
        from recsys.models import TrainedModel
        from recsys.services import sequential

        TrainedModel.objects.filter(name=sequential.MODEL_NAME).delete()  # an earlier run's model

    rng = np.random.default_rng(5)
    queries = centres[rng.integers(0, len(centres), RUNS + WARMUP)] + 0.3 / np.sqrt(DIM) * rng.standard_normal(
        (RUNS + WARMUP, DIM)).astype(np.float32)
    base = time_bare_top10("vector", queries)
    base_cpu = list(CPU)

    picks = [random.Random(9).choice(visitors) for _ in range(WARMUP)] + \
        [visitors[i % len(visitors)] for i in range(RUNS)]
    for vid in picks[:WARMUP]:
        recommend(vid, "for-you")
    with CaptureQueriesContext(connection) as ctx:
        recommend(picks[-1], "for-you")
    engine = time_calls(lambda vid: recommend(vid, "for-you"), [(vid,) for vid in picks[WARMUP:]])
    engine_cpu = list(CPU)
    cold = time_calls(lambda: recommend("bench-cold-visitor", "for-you"), [()] * 100)
    sample = recommend(picks[-1], "for-you")
    print(f"  bare HNSW top-10 (same process):   p50 {pct(base, 50):6.2f} ms   p99 {pct(base, 99):6.2f} ms")
    print(f"  recommend(for-you), warm visitor:  p50 {pct(engine, 50):6.2f} ms   p99 {pct(engine, 99):6.2f} ms   "
          f"mean {statistics.mean(engine):.2f} ms   ({len(ctx.captured_queries)} ORM-cursor queries in the calling thread)")
    print(f"  client CPU per call (p50):         bare {pct(base_cpu, 50):.2f} ms, recommend {pct(engine_cpu, 50):.2f} ms")
    print(f"  machine load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  recommend(for-you), cold visitor:  p50 {pct(cold, 50):6.2f} ms   p99 {pct(cold, 99):6.2f} ms")
    print(f"  sample: {[(r.item_id, r.reasons[0].strategy) for r in sample.items[:4]]}")
    if HALFVEC:
        bench_halfvec(queries)
    if ANCHOR:
        report_anchor(engine)


def time_bare_top10(kind: str, queries) -> list[float]:
    """Milliseconds per bare top-10 query on the ``kind`` ("vector" or "halfvec") HNSW index."""
    return time_query(f"SELECT item_id FROM recsys_item WHERE vector_dims(embedding) = {DIM} "
                      f"ORDER BY embedding::{kind}({DIM}) <=> %s::{kind}({DIM}) LIMIT 10", queries)


def time_query(sql: str, queries) -> list[float]:
    """Milliseconds per run of ``sql`` with each query vector (after WARMUP untimed runs)."""
    from recsys.services.vectors import to_literal

    def bare(vec):
        with connection.cursor() as cur:
            cur.execute(sql, [to_literal(vec)])
            cur.fetchall()

    for q in queries[:WARMUP]:
        bare(q)
    return time_calls(bare, [(q,) for q in queries[WARMUP:]])


def bench_halfvec(queries) -> None:
    """The same bare query on a halfvec HNSW index (built here, dropped after): size and speed."""
    from recsys.services.vectors import index_name

    name = "bench_item_embedding_halfvec"
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute(f"CREATE INDEX {name} ON recsys_item USING hnsw ((embedding::halfvec({DIM})) "
                    f"halfvec_cosine_ops) WHERE vector_dims(embedding) = {DIM}")
        build_s = time.perf_counter() - t0
        cur.execute("SELECT pg_relation_size(%s), pg_relation_size(%s)", [index_name(DIM), name])
        full, half = cur.fetchone()
    half_ms = time_bare_top10("halfvec", queries)
    print(f"  halfvec index: build {build_s:.1f} s, {half / 2**20:.0f} MiB vs vector {full / 2**20:.0f} MiB; "
          f"bare top-10 p50 {pct(half_ms, 50):.2f} ms p99 {pct(half_ms, 99):.2f} ms")
    with connection.cursor() as cur:
        cur.execute(f"DROP INDEX {name}")


ANCHOR_TABLE = "bench_anchor_vectors"
ANCHOR_HNSW_P50_MS = 3.1  # the reference pgvector figure (docs/performance.md)
TARGET_P99_MS = 20.0  # the recommendation engine issue: for-you p99 at 100,000 items


def anchor_hnsw(n: int = 100_000) -> tuple[list[float], float | None]:
    """Bare HNSW top-10 times (ms) on the anchors' protocol (module docstring), and the index
    build time in s (None when ``--reuse`` found the table built)."""
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(17)
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [ANCHOR_TABLE])
        exists = cur.fetchone()[0]
        if exists:
            cur.execute(f"SELECT count(*) FROM {ANCHOR_TABLE}")
            exists = cur.fetchone()[0] == n
    build_s = None
    if not (REUSE and exists):
        connection.ensure_connection()
        register_vector(connection.connection)
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {ANCHOR_TABLE}")
            cur.execute(f"CREATE TABLE {ANCHOR_TABLE} (id int PRIMARY KEY, embedding vector({DIM}))")
        with connection.connection.cursor() as cur:
            with cur.copy(f"COPY {ANCHOR_TABLE} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "vector"])
                for start in range(0, n, 20000):
                    vecs = rng.standard_normal((min(n, start + 20000) - start, DIM)).astype(np.float32)
                    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                    for i, v in enumerate(vecs):
                        copy.write_row((start + i, v))
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute(f"CREATE INDEX ON {ANCHOR_TABLE} USING hnsw (embedding vector_cosine_ops)")
            cur.execute(f"ANALYZE {ANCHOR_TABLE}")
        build_s = time.perf_counter() - t0
    queries = rng.standard_normal((RUNS + WARMUP, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return time_query(f"SELECT id FROM {ANCHOR_TABLE} ORDER BY embedding <=> %s::vector({DIM}) LIMIT 10",
                      queries), build_s


def report_anchor(engine_ms: list[float]) -> None:
    anchor_ms, build_s = anchor_hnsw()
    p50 = pct(anchor_ms, 50)
    scaled = TARGET_P99_MS * p50 / ANCHOR_HNSW_P50_MS
    p99 = pct(engine_ms, 99)
    print(f"  anchor protocol (100,000 random unit vectors, random queries): HNSW top-10 p50 {p50:.2f} ms, "
          f"p99 {pct(anchor_ms, 99):.2f} ms" + (f", index built in {build_s:.1f} s" if build_s is not None else "")
          + f" (reference: p50 {ANCHOR_HNSW_P50_MS} ms)")
    print(f"  for-you p99 {p99:.2f} ms against the target {TARGET_P99_MS:.0f} ms as written and "
          f"{scaled:.2f} ms scaled to this run's HNSW speed ({p50:.2f} / {ANCHOR_HNSW_P50_MS} of the anchor's): "
          f"{'within' if p99 < scaled else 'over'} the scaled one")


REUSE = False
HALFVEC = False
SEQUENTIAL = True
ANCHOR = False


def main(argv: list[str]) -> None:
    global REUSE, HALFVEC, SEQUENTIAL, ANCHOR
    REUSE = "--reuse" in argv
    ANCHOR = "--anchor" in argv
    HALFVEC = "--halfvec" in argv
    SEQUENTIAL = "--no-sequential" not in argv
    values = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--overlap")]
    sizes = [int(a) for a in values] or [100_000]
    call_command("migrate", verbosity=0)
    for n in sizes:
        bench_size(n)


if __name__ == "__main__":
    main(sys.argv[1:])
