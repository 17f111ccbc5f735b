"""Round trips of one realtime cycle: how many times the worker waits for PostgreSQL or Valkey.

    LIVEREC_STACK_DIR=.stack/rt python -m devstack run -- python bench/bench_roundtrips.py [--visitors 1] [--cycles 15]

Under load every round trip waits for the server process to be scheduled (a ``SELECT 1`` took
p90 1.3 ms there against 0.2 ms idle), so their count is a cost of its own, and unlike a
timing it is the same on any machine. Runs ``recsys.tasks.process_events`` in this process
(no workers: nothing else folds the events) after ``--visitors`` visitors with an open
socket showing "for-you" each posted one item view, and counts:

- PostgreSQL: waits on the cycle's own connection, read off libpq's protocol trace (a frontend
  message followed by a backend one): a BEGIN, a pipeline's sync and a fetch each count once.
  Reads the engine overlaps on a pooled second connection (``recsys.overlap``, when the pool
  is on) run beside the cycle and are not counted;
- Valkey/Redis: commands sent (a pipeline counts once), synchronous and asyncio (the channel
  layer's group_send); the broker shares the server in the demo, so Celery publishes count too.

Prints, per cycle, the statements in order, then the medians over ``--cycles``: round trips,
and the cycle's wall time (noisy; compare it only with runs interleaved on the same stack).
Needs the demo catalogue (imported as bench_freshness does on first run). Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

import redis.asyncio.connection as async_redis  # noqa: E402
import redis.connection  # noqa: E402
from django.db import connection  # noqa: E402

SENT: list[str] = []


def _count_redis() -> None:
    """Record each command (or pipeline) the cycle sends, sync and asyncio."""
    sync_send = redis.connection.AbstractConnection.send_packed_command
    async_send = async_redis.AbstractConnection.send_packed_command

    def head(command) -> str:
        first = command[0] if isinstance(command, (list, tuple)) else command
        return bytes(first[:60]).split(b"\r\n")[2].decode(errors="replace") if first else "?"

    def send(self, command, check_health=True):
        SENT.append(head(command))
        return sync_send(self, command, check_health)

    async def asend(self, command, check_health=True):
        SENT.append("(async) " + head(command))
        return await async_send(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send
    async_redis.AbstractConnection.send_packed_command = asend


def _pg_waits(trace: Path) -> list[str]:
    """The round trips in a libpq trace: each run of frontend messages answered by the backend,
    named by its first Query/Parse text."""
    waits, pending, last = [], [], None
    for line in trace.read_text(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        direction, kind = parts[1], parts[3]
        if direction == "F":
            if kind in ("Query", "Parse") and len(parts) > 4:
                pending.append(parts[4].replace('""', "").strip()[:70])
        elif last == "F":
            waits.append(pending[0] if pending else "(sync)")
            pending = []
        last = direction
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=15)
    parser.add_argument("--quiet", action="store_true", help="only the medians")
    args = parser.parse_args()

    from bench.bench_freshness import ensure_catalogue, watching_visitors
    from recsys import tasks
    from tracking.services import append_events

    catalogue = ensure_catalogue()
    rng = random.Random(3)
    visitors = watching_visitors("bench-rt", args.visitors)

    def post() -> None:
        for v in visitors:
            append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": rng.choice(catalogue),
                            "ts": int(time.time() * 1000)}], visitor_id=v)
        time.sleep(0.35)  # past the debounce window: each change opens a burst (pushed at once)

    for _ in range(3):  # warm-up: models, statement plans, connections
        post()
        tasks.process_events()
    _count_redis()
    trace = Path(tempfile.mkstemp(prefix="liverec-pqtrace-")[1])
    walls, pg_counts, redis_counts = [], [], []
    for cycle in range(args.cycles):
        post()
        SENT.clear()
        connection.ensure_connection()
        with trace.open("w") as out:
            connection.connection.pgconn.trace(out.fileno())
            start = time.perf_counter()
            tasks.process_events()
            walls.append((time.perf_counter() - start) * 1000)
            connection.connection.pgconn.untrace()
        waits = _pg_waits(trace)
        pg_counts.append(len(waits))
        redis_counts.append(len(SENT))
        if cycle == 0 and not args.quiet:
            print(f"one cycle, {args.visitors} visitor(s): PostgreSQL {len(waits)} round trips, Redis {len(SENT)}")
            for sql in waits:
                print(f"  pg     {sql}")
            for command in SENT:
                print(f"  redis  {command}")
    trace.unlink()
    print(f"{args.cycles} cycles of {args.visitors} visitor(s), medians: round trips PostgreSQL "
          f"{statistics.median(pg_counts):.0f} + Redis {statistics.median(redis_counts):.0f} = "
          f"{statistics.median(p + r for p, r in zip(pg_counts, redis_counts)):.0f}; "
          f"cycle wall {statistics.median(walls):.1f} ms (mean {statistics.fmean(walls):.1f})")


if __name__ == "__main__":
    main()
