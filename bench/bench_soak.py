"""Soak: steady ingest with live sockets open, for a long time; nothing lost, nothing growing.

    python -m devstack run -- python bench/bench_soak.py [--duration 600] [--rate 200] [--sockets 50]

Starts its own uvicorn and the two Celery workers on the devstack database, posts batches to
the real HTTP endpoint at a fixed rate from many visitors (loopback only), keeps WebSockets
open for some of them, and reports: accepted events/s, request p50/p99, worker lag (events
behind the projection cursor, sampled), resident memory of every process at start and end,
and rows stored = events accepted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import psutil  # noqa: E402
import websockets  # noqa: E402
from django.db import connection  # noqa: E402

from devstack.__main__ import THREAD_ENV, worker_commands  # noqa: E402
from devstack.supervisor import Supervisor  # noqa: E402
from recsys.models import Item, ProjectionCursor  # noqa: E402
from recsys.services import interests  # noqa: E402
from recsys.tokens import make_token  # noqa: E402
from tracking.models import Event  # noqa: E402

HOST = "127.0.0.1"  # loopback only, always
EVENT_NAMES = ["item_viewed"] * 6 + ["item_clicked", "added_to_cart", "page_viewed", "searched"]
QUERIES = ["space adventure", "romantic comedy", "crime drama", "animated musical", "war film", "horror"]
# Memory bound stated up front: a process may grow by this fraction of its start RSS plus a
# fixed allowance (Python arenas, connection pools and torch caches settle after warm-up).
GROWTH_FRACTION, GROWTH_ALLOWANCE_MB = 0.25, 64


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def lag() -> int:
    """Events in the log after the interest projection's cursor (what the workers still owe)."""
    cur = ProjectionCursor.objects.filter(name=interests.CURSOR).first()
    txid, pos = (cur.txid, cur.position) if cur else (0, 0)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM tracking_event WHERE (txid, id) > (%s::text::xid8, %s)", [str(txid), pos])
        return c.fetchone()[0]


def rss_mb(proc: psutil.Process, private: bool = False) -> float:
    """Resident memory of a process and its children (uvicorn/celery may fork).

    ``private``: without shared pages. PostgreSQL's shared_buffers (1 GB here) are shared
    memory that counts into RSS as pages are touched: cache warming, not growth.
    """
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_info()
            total += info.rss - (info.shared if private else 0)
        except psutil.Error:
            pass
    return total / 2**20


def service_processes() -> dict[str, psutil.Process]:
    out = {}
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(c.fetchone()[0])
    out["postgres (private)"] = backend.parent()
    port = int(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            out["valkey"] = psutil.Process(conn.pid)
            break
    return out


def ensure_catalogue(n: int = 300) -> int:
    have = Item.objects.exclude(embedding=None).count()
    if have >= 50:  # the demo catalogue (or an earlier soak's): no encoder needed in this process
        return have
    from recsys.encoders import get_encoder
    from recsys.services import items

    model = get_encoder().name
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Animation", "Thriller", "War", "Crime"]
    for i in range(n):
        g = [genres[i % 10], genres[(i * 7) % 10]]
        items.upsert_item({"item_id": f"soak-{i}", "title": f"Soak film {i}", "text": f"A {' and '.join(g)} film",
                           "categories": g, "source": "bench"}, embed=False)
    pks = list(Item.objects.filter(item_id__startswith="soak-").values_list("pk", flat=True))
    items.embed_items(pks)
    return Item.objects.filter(embedding_model=model).count()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(base: str, run: str, item_ids: list[str], args, stats: dict) -> None:
    batches_per_s = args.rate / args.batch
    visitors = [f"soak-{run}-{i:04d}" for i in range(args.visitors)]
    stop_at = time.monotonic() + args.duration
    lat, accepted, sent, errors = stats["latency_ms"], stats, 0, stats["errors"]
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    sem = asyncio.Semaphore(args.concurrency)

    async def one(client: httpx.AsyncClient, visitor: str) -> None:
        now = int(time.time() * 1000)
        events = []
        for _ in range(args.batch):
            name = random.choice(EVENT_NAMES)
            ev = {"id": str(uuid.uuid4()), "name": name, "ts": now}
            if name == "searched":
                ev["props"] = {"query": random.choice(QUERIES)}
            elif name != "page_viewed":
                ev["item_id"] = random.choice(item_ids)
            events.append(ev)
        body = {"site_key": "demo-site-key", "visitor_id": visitor, "sent_at": now, "events": events}
        async with sem:
            start = time.perf_counter()
            try:
                resp = await client.post(f"{base}/liverec/events/", json=body)
                lat.append((time.perf_counter() - start) * 1000)
                if resp.status_code == 200:
                    accepted["accepted"] += resp.json()["accepted"]
                else:
                    errors.append(resp.status_code)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)

    async with httpx.AsyncClient(limits=limits, timeout=30, headers=bench.prodenv.SERVER_KEY_HEADERS) as client:
        tasks = set()
        start = time.monotonic()
        while time.monotonic() < stop_at:  # bounded by the duration
            due = start + sent / batches_per_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(client, visitors[sent % len(visitors)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        stats["batches_sent"] = sent
        await asyncio.gather(*tasks)


async def hold_sockets(port: int, run: str, args, stats: dict, stop: asyncio.Event) -> None:
    async def one(i: int) -> None:
        visitor = f"soak-{run}-{i:04d}"  # the first visitors of the load: their pushes flow
        uri = f"ws://{HOST}:{port}/liverec/ws/"
        for _ in range(20):  # bounded reconnects
            try:
                async with websockets.connect(uri, origin=f"http://{HOST}:{port}") as ws:
                    await ws.send(json.dumps({"type": "auth", "token": make_token(visitor)}))
                    stats["sockets_open"] += 1
                    try:
                        while not stop.is_set():
                            try:
                                msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                            except asyncio.TimeoutError:
                                continue
                            if msg.get("type") == "recs":
                                stats["pushes"] += 1
                    finally:
                        stats["sockets_open"] -= 1
                    return
            except (OSError, websockets.WebSocketException):
                stats["socket_drops"] += 1
                await asyncio.sleep(1)

    await asyncio.gather(*(one(i) for i in range(args.sockets)))


async def sample(stats: dict, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        value = await asyncio.to_thread(lag)
        stats["lag_samples"].append(value)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (default 100)")
    parser.add_argument("--batch", type=int, default=10, help="events per request (default 10)")
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--sockets", type=int, default=50, help="WebSockets held open (default 50)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at most")
    # 150 s: the first LLM summary runs SUMMARY_DEBOUNCE_SECONDS (60) after a visitor's first
    # event, and loading SmolLM2 then adds ~500 MB to the batch worker once (seen in a 60 s
    # warm-up run): that load belongs before the start sample.
    parser.add_argument("--warmup", type=float, default=150.0,
                        help="seconds of load before the start memory sample (default 150)")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for the workers to catch up after")
    args = parser.parse_args()
    args.sockets = min(args.sockets, args.visitors)

    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    n_items = ensure_catalogue()
    item_ids = list(Item.objects.exclude(embedding=None).values_list("item_id", flat=True)[:2000])
    env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(ROOT)}
    sup = Supervisor(env)
    port = free_port()
    run = uuid.uuid4().hex[:8]
    try:
        procs = {name: sup.start(name, cmd) for name, cmd in worker_commands(sys.executable)}
        procs["web (uvicorn)"] = sup.start("web", [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--host", HOST,
                                                  "--port", str(port), "--log-level", "warning"])
        from recsys.tasks import health_probe, health_probe_batch

        health_probe.apply_async().get(timeout=300)
        health_probe_batch.apply_async().get(timeout=300)
        deadline = time.monotonic() + 120
        while True:  # bounded wait for uvicorn
            try:
                httpx.get(f"http://{HOST}:{port}/liverec/health/", timeout=30)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        if args.warmup > 0:
            # Steady state is what the bound is about: one-time loads (the batch worker's LLM
            # and its KV cache, torch and connection pools) happen in this warm-up, before the
            # start sample. Its visitors are a separate run id, outside the measured counts.
            warm = {"latency_ms": [], "accepted": 0, "errors": []}
            print(f"soak: warm-up {args.warmup:.0f} s before the start sample", flush=True)
            asyncio.run(run_load(f"http://{HOST}:{port}", run + "w", item_ids,
                                 argparse.Namespace(**{**vars(args), "duration": args.warmup}), warm))
        watched = {name: psutil.Process(p.pid) for name, p in procs.items()}
        watched.update(service_processes())
        watched["bench client"] = psutil.Process()
        rss_start = {name: rss_mb(p, "private" in name) for name, p in watched.items()}
        rows_before = Event.objects.filter(visitor_id__startswith=f"soak-{run}-").count()

        stats = {"latency_ms": [], "accepted": 0, "errors": [], "lag_samples": [], "sockets_open": 0,
                 "pushes": 0, "socket_drops": 0}
        print(f"soak: {args.duration:.0f} s at {args.rate:.0f} events/s in batches of {args.batch}, "
              f"{args.sockets} sockets, {n_items} items, run {run}", flush=True)

        async def soak():
            stop = asyncio.Event()
            holders = asyncio.create_task(hold_sockets(port, run, args, stats, stop))
            sampler = asyncio.create_task(sample(stats, stop, 5.0))
            started = time.perf_counter()
            await run_load(f"http://{HOST}:{port}", run, item_ids, args, stats)
            stats["elapsed"] = time.perf_counter() - started
            stats["sockets_at_end"] = stats["sockets_open"]
            # Drain: wait (bounded) for the projection to reach the log head.
            drain_start = time.perf_counter()
            drain_deadline = time.monotonic() + args.drain
            while time.monotonic() < drain_deadline:  # bounded
                if await asyncio.to_thread(lag) == 0:
                    break
                await asyncio.sleep(0.5)
            stats["drain_s"] = time.perf_counter() - drain_start
            stop.set()
            await asyncio.gather(holders, sampler)

        asyncio.run(soak())
        rss_end = {name: rss_mb(p, "private" in name) for name, p in watched.items()}
        rows = Event.objects.filter(visitor_id__startswith=f"soak-{run}-").count() - rows_before
        final_lag = lag()
    finally:
        sup.stop()

    lat = stats["latency_ms"]
    print("\n== soak results ==")
    print(f"duration            {stats['elapsed']:.0f} s (requested {args.duration:.0f} s)")
    print(f"throughput          {stats['accepted'] / stats['elapsed']:.1f} events/s accepted "
          f"({stats['batches_sent']} requests, {len(stats['errors'])} failed: {sorted(set(map(str, stats['errors'])))})")
    print(f"request latency     p50 {percentile(lat, 0.50):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
          f"max {max(lat) if lat else float('nan'):.1f} ms")
    samples = stats["lag_samples"]
    print(f"worker lag (events) median {statistics.median(samples) if samples else 0:.0f}, "
          f"p99 {percentile(samples, 0.99):.0f}, max {max(samples) if samples else 0}; "
          f"drained to {final_lag} in {stats['drain_s']:.1f} s after the load stopped")
    print(f"sockets             {args.sockets} opened, {stats['sockets_at_end']} open at the end, "
          f"{stats['socket_drops']} drops, {stats['pushes']} list messages received")
    print("resident memory (MB) start -> end (bound: +{:.0f}% + {} MB)".format(GROWTH_FRACTION * 100, GROWTH_ALLOWANCE_MB))
    grew = []
    for name in watched:
        start, end = rss_start[name], rss_end[name]
        if "postgres" in name:  # backends come and go with the pools: reported, not bounded
            print(f"  {name:<22} {start:8.1f} -> {end:8.1f}  (postmaster + backends, private pages)")
            continue
        ok = end <= start * (1 + GROWTH_FRACTION) + GROWTH_ALLOWANCE_MB
        if name == "bench client":  # the load generator itself: reported, not part of the verdict
            print(f"  {name:<22} {start:8.1f} -> {end:8.1f}  (load generator, not bounded)")
            continue
        grew += [] if ok else [name]
        print(f"  {name:<22} {start:8.1f} -> {end:8.1f}  {'ok' if ok else 'OVER BOUND'}")
    print(f"rows stored         {rows} = events accepted {stats['accepted']}: {'yes' if rows == stats['accepted'] else 'NO'}")
    ok = rows == stats["accepted"] and not grew and final_lag == 0 and not stats["errors"]
    print("verdict             " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
