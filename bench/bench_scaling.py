"""Throughput with one and then two processes of a kind, under the same load: the scaling ratios.

    python -m devstack run -- python bench/bench_scaling.py [--seconds 20] [--visitors 120] [--rate 240]

- pushes/s: ``--visitors`` visitors, each with an open socket, post ``--rate`` events/s in all
  (one tracker batch per visitor per second, spread over the second: ``bench_freshness``'s
  load generator) for ``--seconds``, against the real stack (uvicorn, the batch worker, and one
  then two realtime workers). Every post changes its visitor's list, so each post asks for a
  push; pushes/s counts what the sockets received.
- ingest events/s: ``bench/bench_ingest.py`` with one then two uvicorn worker processes.

Runs on a scratch database (a 400-film slice of the MovieLens catalogue, embedded here;
dropped at the end). Prints each figure and the ratio two / one. On 2 cores the ceiling is
2.0; what keeps it lower is printed beside it (the realtime workers' folds take the
projection cursor's lock in turn: the fold share of a cycle does not scale).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "liverec_bench_scaling"
FILMS = 400


def with_db(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


def admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def ingest_rate(workers: int, seconds: int) -> float:
    out = subprocess.run([sys.executable, "bench/bench_ingest.py", "--seconds", str(seconds), "--workers", str(workers)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    match = re.search(r"ingest: ([\d,]+) events/s", out)
    if not match:
        raise RuntimeError(f"bench_ingest printed no rate:\n{out[-2000:]}")
    return float(match.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--visitors", type=int, default=120)
    parser.add_argument("--rate", type=int, default=240)
    parser.add_argument("--ingest-seconds", type=int, default=10)
    args = parser.parse_args()
    base_url = os.environ["DATABASE_URL"]
    admin(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin(base_url, f"CREATE DATABASE {BENCH_DB}")
    os.environ["DATABASE_URL"] = with_db(base_url, BENCH_DB)
    results: dict[str, dict[int, float]] = {"pushes/s": {}, "ingest events/s": {}}
    try:
        from bench import bench_freshness as fresh  # sets up Django on the scratch database
        from django.conf import settings
        from django.core.management import call_command

        from demo.catalogue import movielens
        from demo.catalogue.models import Film
        from recsys.models import Item
        from recsys.services import items
        from tests.stack import start_stack

        call_command("migrate", "--noinput", verbosity=0)
        Film.objects.bulk_create([Film(ml_id=f.ml_id, title=f.title, year=f.year, genres=f.genres)
                                  for f in list(movielens.films())[:FILMS]], ignore_conflicts=True)
        items.sync_from_adapters()
        items.embed_items(items.stale_item_pks())
        catalogue = list(Item.objects.exclude(embedding=None).values_list("item_id", flat=True))
        print(f"{len(catalogue)} embedded items; {os.cpu_count()} CPUs; load {args.rate} events/s from "
              f"{args.visitors} visitors with sockets, {args.seconds} s per step", flush=True)
        for workers in (1, 2):
            stack = start_stack(dict(settings.DATABASES["default"]), realtime=workers)
            try:
                stop = _Stop(args.seconds)
                counts = asyncio.run(fresh.background(stack.port, args.rate, args.visitors, catalogue, stop, "aiohttp"))
            finally:
                stack.stop()
            results["pushes/s"][workers] = counts["pushes"] / args.seconds  # the posting window
            print(f"realtime workers {workers}: {results['pushes/s'][workers]:.1f} pushes/s "
                  f"({counts['events']} events posted in {args.seconds} s, {counts['errors']} errors)", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        admin(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    os.environ["DATABASE_URL"] = base_url
    for workers in (1, 2):
        results["ingest events/s"][workers] = ingest_rate(workers, args.ingest_seconds)
        print(f"web processes {workers}: {results['ingest events/s'][workers]:,.0f} ingest events/s", flush=True)
    for name, by in results.items():
        print(f"{name}: 1 -> 2 processes {by[1]:,.1f} -> {by[2]:,.1f}, ratio {by[2] / by[1]:.2f}")
    return 0


class _Stop:
    """``bench_freshness.background``'s stop flag: set after ``seconds`` of posting."""

    def __init__(self, seconds: float):
        self.until = time.monotonic() + seconds + 30.0  # sockets open first (each ranks a list)
        self.seconds = seconds
        self.started: float | None = None

    def is_set(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        return now - self.started >= self.seconds or now >= self.until


if __name__ == "__main__":
    sys.exit(main())
