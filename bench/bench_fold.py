"""The realtime folds' cost per batch: interests and co-occurrence, this checkout against a base.

    LIVEREC_STACK_DIR=.stack/x python -m devstack run -- python bench/bench_fold.py [--base main]

1. The MovieLens catalogue (``bench_interests.load_catalogue``: embedded in process on the
   first run) and its keyphrases (interest labelling is part of the fold).
2. ``--visitors`` new visitors (50), each with ``--history`` events (40) on two or three genres,
   appended to the log and folded, so every profile has vectors and up to four interests.
3. ``--rounds`` rounds of the realtime pattern: each visitor appends 4 events (200 in one
   transaction, as the ingest view writes a busy second), then ``interests.catch_up(settle=0)``
   and ``cooccurrence.catch_up(settle=0)`` fold them, as the realtime worker does. The two
   variants alternate round by round in this one process, on the same database and visitors:
   "base", the two service modules as of ``--base`` (read with ``git show``, imported under
   other names), and "this", the checkout's. Per batch: wall ms, this process's CPU ms and
   the PostgreSQL backend's CPU ms (``/proc/<pid>/schedstat``: the server runs on this machine).
4. Same results: each variant replays the whole log (``rebuild``, 5000-event batches, so both
   the new-row and the update path run), and the projections are compared byte for byte:
   the vectors, the interests JSON, the associations' keys. Printed, not asserted.

The events stay (the log is append-only): run it on its own LIVEREC_STACK_DIR.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone as tz
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

EVENTS_PER_VISITOR = 4
# Event types of the simulated traffic, with their shares (views dominate, as on the demo site).
MIX = [("item_viewed", 0.70), ("added_to_cart", 0.10), ("rated", 0.12), ("purchased", 0.03),
       ("not_interested", 0.05)]


def base_module(ref: str, name: str):
    """``recsys/services/<name>.py`` as of ``ref``, imported as ``recsys.services._base_<name>``
    (its relative imports resolve in the package, against this checkout's other modules)."""
    source = subprocess.run(["git", "show", f"{ref}:recsys/services/{name}.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"recsys.services._base_{name}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "recsys.services"
    sys.modules[spec.name] = module
    exec(compile(source, f"{ref}:recsys/services/{name}.py", "exec"), module.__dict__)
    return module


def backend_cpu() -> float:
    """CPU seconds the PostgreSQL backend serving this connection has used."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


class Traffic:
    """Visitors with two or three favourite genres each, appending events on their items."""

    def __init__(self, visitors: int, seed: int = 0):
        from recsys.models import Item

        self.rng = random.Random(seed)
        by_genre: dict[str, list[str]] = {}
        for item_id, cats in Item.objects.exclude(embedding=None).values_list("item_id", "categories"):
            for c in cats:
                by_genre.setdefault(c, []).append(item_id)
        genres = sorted(g for g, ids in by_genre.items() if len(ids) >= 20)
        run = uuid.uuid4().hex[:8]
        self.tastes = {f"fold-{run}-{n}": [x for g in self.rng.sample(genres, self.rng.choice((2, 3)))
                                          for x in by_genre[g]] for n in range(visitors)}
        self.clock = datetime.now(tz.utc) - timedelta(days=7)

    def append(self, per_visitor: int) -> int:
        from tracking.models import Event

        names, shares = zip(*MIX)
        rows = []
        for _ in range(per_visitor):
            for visitor, items in self.tastes.items():
                self.clock += timedelta(seconds=self.rng.uniform(0.5, 30))
                name = self.rng.choices(names, shares)[0]
                rows.append(Event(uuid=uuid.uuid4(), name=name, visitor_id=visitor, item_id=self.rng.choice(items),
                                  properties={"value": self.rng.randint(1, 5)} if name == "rated" else {},
                                  client_time=self.clock, occurred_at=self.clock, received_at=self.clock,
                                  source=Event.Source.IMPORT))
        with transaction.atomic():
            Event.objects.bulk_create(rows)
        return len(rows)


def timed(fn) -> tuple[float, float, float]:
    pg, cpu, wall = backend_cpu(), time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1000 * wall, 1000 * cpu, 1000 * (backend_cpu() - pg)


def snapshot() -> tuple[list, list, list]:
    """The projections as stored, byte for byte (vectors in pgvector's binary send format)."""
    from recsys.models import ItemAssociation, ItemPopularity, VisitorProfile

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT visitor_id, user_id, vector_send(long_term), vector_send(short_term), interests::text, "
                       f"event_count, rate_per_hour, last_event_at, last_event_id, summary "
                       f"FROM {VisitorProfile._meta.db_table} ORDER BY visitor_id")
        profiles = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()]
        cursor.execute(f"SELECT item_a, item_b, log_key, updated, weight FROM {ItemAssociation._meta.db_table} "
                       f"ORDER BY item_a, item_b")
        pairs = cursor.fetchall()
        cursor.execute(f"SELECT item_id, log_key, updated FROM {ItemPopularity._meta.db_table} ORDER BY item_id")
        popularity = cursor.fetchall()
    return profiles, pairs, popularity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="main", help="git ref of the modules to compare against")
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--history", type=int, default=40, help="events per visitor before the timed rounds")
    parser.add_argument("--rounds", type=int, default=20, help="timed batches per variant")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay comparison")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from bench.bench_interests import load_catalogue
    from recsys.models import Keyphrase
    from recsys.services import cooccurrence, interests, labels

    load_catalogue()
    if not Keyphrase.objects.exists():
        t = time.perf_counter()
        print(f"  {labels.mine_keyphrases()} keyphrases mined and embedded in {time.perf_counter() - t:.0f}s")
    base_ref = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    variants = {"base": (base_module(args.base, "interests"), base_module(args.base, "cooccurrence")),
                "this": (interests, cooccurrence)}

    traffic = Traffic(args.visitors)
    t = time.perf_counter()
    traffic.append(args.history)
    interests.catch_up(settle=0)
    cooccurrence.catch_up(settle=0)
    print(f"history: {args.visitors} visitors x {args.history} events folded in {time.perf_counter() - t:.1f}s")

    batch = args.visitors * EVENTS_PER_VISITOR
    figures = {(v, p): [] for v in variants for p in ("interests", "cooccurrence")}
    for warm in variants.values():  # first calls load the encoder, phrase matrix, type info
        traffic.append(EVENTS_PER_VISITOR)
        warm[0].catch_up(settle=0)
        warm[1].catch_up(settle=0)
    for r in range(args.rounds):
        for name in (("base", "this") if r % 2 == 0 else ("this", "base")):
            ints, cooc = variants[name]
            traffic.append(EVENTS_PER_VISITOR)
            figures[(name, "interests")].append(timed(lambda: ints.catch_up(settle=0)))
            figures[(name, "cooccurrence")].append(timed(lambda: cooc.catch_up(settle=0)))

    print(f"\nper batch of {batch} events ({args.visitors} visitors x {EVENTS_PER_VISITOR}), {args.rounds} batches "
          f"per variant, alternating; base = {args.base} ({base_ref}), this = the checkout")
    print(f"  {'fold':<13}{'variant':<9}{'wall p50':>10}{'wall mean':>11}{'cpu mean':>10}{'pg cpu mean':>13}")
    for part in ("interests", "cooccurrence"):
        for name in variants:
            rows = figures[(name, part)]
            wall, cpu, pg = ([r[i] for r in rows] for i in range(3))
            print(f"  {part:<13}{name:<9}{statistics.median(wall):>8.1f}ms{statistics.mean(wall):>9.1f}ms"
                  f"{statistics.mean(cpu):>8.1f}ms{statistics.mean(pg):>11.1f}ms")
        base_cpu = statistics.mean(r[1] + r[2] for r in figures[("base", part)])
        this_cpu = statistics.mean(r[1] + r[2] for r in figures[("this", part)])
        print(f"  {part:<13}worker + pg cpu: base {base_cpu:.1f} ms -> this {this_cpu:.1f} ms "
              f"({100 * (this_cpu - base_cpu) / base_cpu:+.0f}%)")

    if args.no_replay:
        return
    results = {}
    for name, (ints, cooc) in variants.items():
        t = time.perf_counter()
        events = ints.rebuild()
        cooc.rebuild()
        results[name] = snapshot()
        print(f"replay ({name}): {events} events, interests + co-occurrence in {time.perf_counter() - t:.1f}s")
    for label, base_rows, this_rows in zip(("profiles", "associations", "popularity"), *results.values()):
        same = sum(a == b for a, b in zip(base_rows, this_rows))
        print(f"  {label}: {len(this_rows)} rows, identical: {same == len(base_rows) == len(this_rows)} "
              f"({same}/{len(base_rows)} equal)")


if __name__ == "__main__":
    main()
