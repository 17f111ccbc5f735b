"""Ingest into the partitioned event log against the same ingest into an unpartitioned one.

    python -m devstack run -- python bench/bench_partitions.py [--rounds 6] [--events 4000]

On a scratch database (migrated here, dropped at the end), ``tracking.services.append_events``
(validation, preprocessing and the insert, as the ingest view calls it) appends batches of 20
events, one visitor per batch, in alternating rounds:

- partitioned: the log as migrated (range partitions by month, exactly-once through
  ``tracking_eventkey``);
- unpartitioned: the same service with its statement pointed at a plain copy of the table
  (same columns and indexes, ``ON CONFLICT (uuid)`` on a unique index: the log before
  partitioning).

The two sides alternate batch by batch. Prints events/s per round and side, the median ratio partitioned / unpartitioned, and the
storage per event (``pg_total_relation_size`` of every partition, the key table and the
indexes, over the rows).
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH = 20
BENCH_DB = "liverec_bench_partitions"
BENCH_REDIS_DB = 8
FLAT = "bench_event_unpartitioned"


def with_db(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


def admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def batches(n_events: int, tag: str) -> list[tuple[str, list[dict]]]:
    now_ms = int(time.time() * 1000)
    out = []
    for b in range(n_events // BATCH):
        visitor = f"bench-{tag}-{b % 500}"
        out.append((visitor, [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(1 + (b * 7 + i) % 1600),
                               "ts": now_ms - 1000 * (BATCH - i)} for i in range(BATCH)]))
    return out


def run(work, append) -> float:
    started = time.perf_counter()
    for visitor, events in work:
        outcomes = append(events, visitor_id=visitor)
        assert all(o.status == "accepted" for o in outcomes), outcomes[:2]
    return sum(len(e) for _, e in work) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--events", type=int, default=4000, help="events per round and side")
    args = parser.parse_args()
    base_url = os.environ["DATABASE_URL"]
    redis_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{BENCH_REDIS_DB}"))
    admin(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin(base_url, f"CREATE DATABASE {BENCH_DB}")
    os.environ.update(DATABASE_URL=with_db(base_url, BENCH_DB), REDIS_URL=redis_url,
                      DJANGO_SETTINGS_MODULE="demo.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from tracking import hooks, services
        from tracking.models import Event

        call_command("migrate", verbosity=0)
        hooks._subscribers = []  # no fold is enqueued: the insert path alone is measured
        with connection.cursor() as cur:
            # The log's indexes as the migration defines them, the primary key on id alone.
            indexes = importlib.import_module("tracking.migrations.0003_partitioned_event_log").INDEXES
            cur.execute(f"CREATE TABLE {FLAT} (LIKE {Event._meta.db_table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            cur.execute(f"ALTER TABLE {FLAT} ADD PRIMARY KEY (id)")
            cur.execute(f"CREATE UNIQUE INDEX ON {FLAT} (uuid)")
            for name, columns in indexes:
                cur.execute(f"CREATE INDEX {name}_flat ON {FLAT} ({columns})")
        partitioned_sql = services._INSERT_SQL
        cols = services._COLUMNS
        flat_sql = (f"INSERT INTO {FLAT} ({','.join(cols)}) SELECT {','.join(cols)} FROM json_to_recordset(%s::json) "
                    f"AS r({','.join(f'{c} {t}' for c, t in zip(cols, services._TYPES))}) "
                    "ON CONFLICT (uuid) DO NOTHING RETURNING uuid, id")

        def append_flat(events, visitor_id):
            services._INSERT_SQL = flat_sql
            try:
                return services.append_events(events, visitor_id=visitor_id)
            finally:
                services._INSERT_SQL = partitioned_sql

        run(batches(1000, "warm-p"), services.append_events)  # prepared statements, caches
        run(batches(1000, "warm-f"), append_flat)
        ratios = []
        print(f"{'round':>5} {'partitioned ev/s':>17} {'unpartitioned ev/s':>19} {'ratio':>6}")
        for r in range(args.rounds):
            # The sides alternate batch by batch (each pair in turn order), so a machine whose
            # speed drifts (commits wait on a shared disk) favours neither.
            spent = {"p": 0.0, "f": 0.0}
            for i, (p_batch, f_batch) in enumerate(zip(batches(args.events, f"p{r}"), batches(args.events, f"f{r}"))):
                sides = [("p", services.append_events, p_batch), ("f", append_flat, f_batch)]
                for tag, fn, batch in (sides if i % 2 else sides[::-1]):
                    started = time.perf_counter()
                    run([batch], fn)
                    spent[tag] += time.perf_counter() - started
            rates = {tag: args.events / seconds for tag, seconds in spent.items()}
            ratios.append(rates["p"] / rates["f"])
            print(f"{r + 1:>5} {rates['p']:>17.0f} {rates['f']:>19.0f} {ratios[-1]:>6.3f}")
        print(f"median ratio partitioned / unpartitioned: {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM tracking_event")
            rows = cur.fetchone()[0]
            cur.execute("SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('tracking_event')")
            log_bytes = cur.fetchone()[0]
            cur.execute("SELECT pg_total_relation_size('tracking_eventkey')")
            key_bytes = cur.fetchone()[0]
            cur.execute(f"SELECT count(*), pg_total_relation_size('{FLAT}') FROM {FLAT}")
            flat_rows, flat_bytes = cur.fetchone()
        print(f"storage per event: partitioned log {log_bytes / rows:.0f} B + event key {key_bytes / rows:.0f} B "
              f"= {(log_bytes + key_bytes) / rows:.0f} B ({rows} rows); unpartitioned {flat_bytes / flat_rows:.0f} B; "
              f"per million events {(log_bytes + key_bytes) / rows:.0f} MB")
        connection.close()
    finally:
        admin(base_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
