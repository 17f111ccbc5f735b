"""Freshness: HTTP POST of an event -> the refreshed list arriving on a real WebSocket client.

    python -m devstack run -- python bench/bench_freshness.py [--samples 150] [--bg-rate 200]

Starts the real stack on the devstack database (uvicorn, the realtime and batch Celery workers,
Valkey channel layer; as on the demo site, the MovieLens catalogue and its 100,000 ratings
are imported on first run, and a sequence model is trained), opens a
socket for one measured visitor and, per sample, posts a view of the top item of its "For you"
list (the viewed item leaves the list, so every event changes it) and times until the push with
a higher sequence number arrives. Samples are spaced beyond PUSH_DEBOUNCE_MS, as a person's
clicks are. Phases:

- idle: nothing else happening;
- load: other visitors, each with an open socket, post ``--bg-rate`` events/s in tracker-sized
  batches (one POST per visitor per second, the visitors' posts spread evenly over the second),
  for as long as the load samples take, from a process of their own;
- floor: a Celery task on the realtime queue doing nothing but a group_send (apply_async ->
  WebSocket), the cost of the transport alone.

After the idle and the load phases it splits the measured visitor's own pushes into the POST,
the ingest and the wait for a worker, the cycle, and the socket, from the cycle trace
(``bench.probepath``).

Loopback only; every loop is bounded. Prints p50/p90/p99 in milliseconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import bench.prodenv  # noqa: E402,F401  (DEBUG off, one thread, offline models)
from bench import cpucount, probepath  # noqa: E402

import django  # noqa: E402

django.setup()

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from recsys.conf import settings as liverec  # noqa: E402
from recsys.models import Item  # noqa: E402
from recsys.tokens import make_token  # noqa: E402

SITE_KEY = "demo-site-key"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def summary(name: str, ms: list[float], extra: str = "") -> str:
    if not ms:
        return f"{name:<34} no samples {extra}"
    return (f"{name:<34} n={len(ms):<4} p50={pct(ms, 50):7.1f} ms  p90={pct(ms, 90):7.1f} ms  "
            f"p99={pct(ms, 99):7.1f} ms  mean={statistics.fmean(ms):6.1f} ms {extra}")


def wal_position() -> int:
    """PostgreSQL's current WAL position in bytes: the load phase's WAL volume is the difference
    (every synchronous commit, the ingest's, waits for what was written before it to be flushed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        position = int(cursor.fetchone()[0])
    connection.close()
    return position


def ensure_catalogue() -> list[str]:
    call_command("migrate", "--noinput", verbosity=0)
    if Item.objects.exclude(embedding=None).count() < 1682:
        from demo.catalogue import movielens
        from demo.catalogue.models import Film
        from recsys.services import items

        print("importing and embedding the MovieLens catalogue (first run only) ...", flush=True)
        Film.objects.bulk_create([Film(ml_id=f.ml_id, title=f.title, year=f.year, genres=f.genres)
                                  for f in movielens.films()], ignore_conflicts=True)
        items.sync_from_adapters()
        items.embed_items(items.stale_item_pks())
    ensure_demo_history()
    return list(Item.objects.exclude(embedding=None).values_list("item_id", flat=True))


def watching_visitors(prefix: str, count: int) -> list[str]:
    """``count`` new visitors registered online with "for-you" on their page, as an open socket
    registers them (in-process benches: every change of theirs is ranked and pushed)."""
    from recsys.services import push

    visitors = [f"{prefix}-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for v in visitors:
        push.socket_opened(v, ["for-you"])
    return visitors


def ensure_demo_history() -> None:
    """What the demo site serves from: MovieLens' ratings as past visitors' history, folded
    into the projections, and a sequence model (for-you leads with it). The model is trained
    for one epoch here, not the demo's fifty: ranking cost per push does not depend on it."""
    from demo.catalogue.management.commands.demo_import import Command
    from recsys.engine import build_strategy
    from recsys.models import TrainedModel
    from recsys.services import cooccurrence, interests, sequential

    Command().import_ratings()
    interests.catch_up()
    cooccurrence.catch_up()
    if not TrainedModel.objects.filter(name=sequential.MODEL_NAME).exists():
        print("training a one-epoch sequence model (first run only) ...", flush=True)
        sequential.train_and_store({**build_strategy(sequential.MODEL_NAME).config, "epochs": 1}, threads=1)


def event(item_id: str) -> dict:
    return {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item_id, "ts": int(time.time() * 1000)}


class Poster:
    """The bench's HTTP client: ``post(path, body)`` over keep-alive connections to the site.

    ``aiohttp`` by default. With httpx, the load generator took 0.34 of the 2 cores at 200
    events/s (py-spy: its pool scans every connection and tries an import on each request,
    ~7 ms of CPU a post with 50 connections), CPU the machine under test lost to the harness
    that, in production, the visitors' own machines spend. ``--client httpx`` keeps httpx
    for a comparison."""

    def __init__(self, kind: str, port: int, connections: int = 1):
        self.kind, self.base, self.connections = kind, f"http://127.0.0.1:{port}", connections
        self._client = None

    async def __aenter__(self) -> "Poster":
        if self.kind == "httpx":
            limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)
            self._client = httpx.AsyncClient(base_url=self.base, limits=limits, timeout=30,
                                             headers=bench.prodenv.SERVER_KEY_HEADERS)
        else:
            self._client = aiohttp.ClientSession(
                self.base, connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=30), json_serialize=json.dumps,
                headers=bench.prodenv.SERVER_KEY_HEADERS)
        return self

    async def __aexit__(self, *exc) -> None:
        await (self._client.aclose() if self.kind == "httpx" else self._client.close())

    async def post(self, path: str, body: dict) -> None:
        """Raises ``PostError`` for a transport error or a status of 400 and above."""
        try:
            if self.kind == "httpx":
                (await self._client.post(path, json=body)).raise_for_status()
                return
            async with self._client.post(path, json=body) as resp:
                await resp.read()
                resp.raise_for_status()
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise PostError(str(exc)) from exc


class PostError(Exception):
    """A post that failed (transport error or HTTP status >= 400), whichever client sent it."""


async def open_socket(port: int, visitor: str):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/liverec/ws/?slots=for-you",
                                  origin=f"http://127.0.0.1:{port}", max_queue=None, open_timeout=60)
    await ws.send(json.dumps({"type": "auth", "token": make_token(visitor)}))  # as widget.js does
    first = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return ws, first


async def measure(port: int, http: Poster, visitor: str, samples: int, gap: float,
                  catalogue: list[str]) -> tuple[list[float], int]:
    """Post-to-push latencies (ms) for ``samples`` events; also how many got no push in 3 s."""
    ws, first = await open_socket(port, visitor)
    # A new visitor's list may be empty (no trending yet): the first view is any film.
    items = [r["item_id"] for r in first["recs"]["items"]] or [random.choice(catalogue)]
    seq, out, missed = first["seq"], [], 0
    answered = []  # the POST's own response time: ingest's share of the path
    walls = []  # (POST sent, list received) on the wall clock, for ``probe_path``
    try:
        for _ in range(samples):
            t0, sent = time.perf_counter(), time.time()
            await http.post("/liverec/events/", {"site_key": SITE_KEY, "visitor_id": visitor,
                                                 "events": [event(items[0])]})
            answered.append((time.perf_counter() - t0) * 1000)
            deadline = t0 + 3.0
            while True:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.perf_counter())))
                except asyncio.TimeoutError:
                    missed += 1
                    break
                if msg.get("type") == "recs" and msg["seq"] > seq:
                    out.append((time.perf_counter() - t0) * 1000)
                    walls.append((sent, time.time()))
                    seq = msg["seq"]
                    items = [r["item_id"] for r in msg["recs"]["items"]] or [random.choice(catalogue)]
                    break
            await asyncio.sleep(gap + random.random() * 0.1)
    finally:
        await ws.close()
    measure.answered, measure.walls = answered, walls
    return out, missed


async def background(port: int, rate: int, visitors: int, catalogue: list[str], stop, client: str) -> dict:
    """``visitors`` visitors with open sockets post ``rate`` events/s in all, one batch per visitor per second."""
    per_visitor = max(1, rate // visitors)
    counts = {"events": 0, "posts": 0, "pushes": 0, "errors": 0, "tenths": [0] * 10}
    started = time.perf_counter()

    async def reader(ws):
        try:
            async for _ in ws:
                counts["pushes"] += 1
        except websockets.ConnectionClosed:
            pass

    async def visitor(i: int, http: Poster, ws, vid: str, start: float):
        read = asyncio.create_task(reader(ws))
        # Visitor i posts at start + i/visitors (+ whole seconds): spread evenly over the second.
        # Not i/visitors after its own socket opened: the sockets open one after another (each
        # ranks a first list), so those phases bunch up, and every post can arrive in the first
        # half of each second (400 events/s for half a second, nothing for the other half).
        tick = start + i / visitors
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        try:
            while not stop.is_set():
                batch = [event(random.choice(catalogue)) for _ in range(per_visitor)]
                counts["tenths"][int((time.perf_counter() - start) % 1.0 * 10)] += 1
                try:
                    await http.post("/liverec/events/", {"site_key": SITE_KEY, "visitor_id": vid, "events": batch})
                    counts["events"] += len(batch)
                    counts["posts"] += 1
                except PostError:
                    counts["errors"] += 1
                tick += 1.0
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        finally:
            await ws.close()
            read.cancel()

    vids = [f"bench-bg-{uuid.uuid4().hex[:12]}" for _ in range(visitors)]
    sockets = await asyncio.gather(*(open_socket(port, vid) for vid in vids))
    start = time.perf_counter()
    async with Poster(client, port, visitors) as http:
        await asyncio.gather(*(visitor(i, http, ws, vid, start) for i, (vid, (ws, _)) in enumerate(zip(vids, sockets))))
    counts["seconds"] = time.perf_counter() - started
    return counts


def background_process(port: int, rate: int, visitors: int, catalogue: list[str], stop, results, client: str) -> None:
    """``background`` in a process of its own (a spawned child; ``stop`` a multiprocessing Event)."""
    results.put(asyncio.run(background(port, rate, visitors, catalogue, stop, client)))


async def floor(port: int, samples: int) -> list[float]:
    """Celery task -> socket times (ms) of ``samples`` probes; a probe with no answer in 5 s
    counts in ``floor.missed`` (under a load the machine cannot keep up with, the realtime
    queue backs up for longer than that: the run still reports what it measured)."""
    from recsys.tasks import probe_push

    visitor = f"bench-floor-{uuid.uuid4().hex[:8]}"
    ws, _ = await open_socket(port, visitor)
    out, floor.missed = [], 0
    try:
        for _ in range(samples):
            nonce = uuid.uuid4().hex
            t0 = time.perf_counter()
            await asyncio.to_thread(probe_push.apply_async, (visitor, nonce))
            while True:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, t0 + 5 - time.perf_counter())))
                except asyncio.TimeoutError:
                    floor.missed += 1
                    break
                if msg.get("nonce") == nonce:
                    out.append((time.perf_counter() - t0) * 1000)
                    break
            await asyncio.sleep(0.05)
    finally:
        await ws.close()
    return out


TRACE = Path(os.environ.get("TMPDIR", "/tmp")) / f"liverec-cycles-{os.getpid()}.jsonl"


def read_trace() -> list[dict] | None:
    """Every line of the cycle trace so far (``recsys.cycletrace``), None without one."""
    try:
        return [json.loads(line) for line in TRACE.read_text().splitlines()]
    except OSError:
        return None


def cycle_report(traced: list[dict] | None, start: float, end: float) -> str:
    """The realtime workers' cycles (of ``read_trace``) that began within [start, end]."""
    if traced is None:
        return "  (no cycle trace)"
    traced = [c for c in traced if start <= c["start"] <= end]
    cycles = [c for c in traced if c.get("task", "cycle") == "cycle"]  # not the trailing pushes
    outcomes: dict[str, int] = {}
    for c in traced:
        for outcome, n in (c.get("outcomes") or {}).items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    busy = [c for c in cycles if c["touched"]]
    pushed = [ms for c in cycles for ms in c.get("latencies", ())] or [0.0]
    slow = sorted(busy, key=lambda c: c["total"])[-max(1, len(busy) // 100):]
    if not busy:
        return f"  cycles: {len(cycles)}, none touched a visitor"
    med = {p: statistics.median(c.get(p, 0.0) for c in busy)
           for p in ("total", "cpu", "fold", "fold_cpu", "states", "states_cpu", "refresh", "refresh_cpu",
                     "store_states", "serve", "associations", "gc")}
    queued = [ms for c in cycles for ms in c.get("queued", ())] or [0.0]
    # Steps inside the phases (``cycletrace.span``): wall / CPU ms, mean over the busy cycles.
    names = sorted({k[5:] for c in busy for k in c if k.startswith("span:") and not k.endswith("_cpu")})
    spans = ", ".join(f"{n} {statistics.mean(c.get(f'span:{n}', 0.0) for c in busy):.1f}/"
                      f"{statistics.mean(c.get(f'span:{n}_cpu', 0.0) for c in busy):.1f}" for n in names)
    return (f"  steps, wall/CPU ms (mean over those cycles): {spans}\n"
            f"  cycles: {len(cycles)} ({len(cycles) / (end - start):.1f}/s, {len(busy)} touching visitors: median "
            f"{statistics.median(c['touched'] for c in busy):.0f} visitors, phases in ms: "
            + ", ".join(f"{p} {v:.1f}" for p, v in med.items()) + ")\n"
            f"  every push of the phase, server side (event received -> list sent to the channel layer): "
            f"n={len(pushed)} p50={pct(pushed, 50):.1f} ms p99={pct(pushed, 99):.1f} ms, of which waiting for "
            f"a cycle to start p50={pct(queued, 50):.1f} ms p99={pct(queued, 99):.1f} ms\n"
            f"  slowest 1% of cycles ({len(slow)}), median phases in ms: "
            + ", ".join(f"{p} {statistics.median(c.get(p, 0.0) for c in slow):.1f}" for p in med) + "\n"
            f"  full garbage collections in cycles: {sum(c.get('gc_full', 0) for c in traced)}, "
            f"{sum(c.get('gc', 0.0) for c in traced):.0f} ms of gc in all; visitor outcomes: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


def probe_path(traced: list[dict] | None, visitor: str, walls: list[tuple[float, float]]) -> str:
    """The measured visitor's pushes split into their parts (``bench.probepath``)."""
    return "  (no cycle trace)" if traced is None else probepath.report(traced, visitor, walls)


async def run(args, port: int, catalogue: list[str]) -> None:
    gap = liverec.PUSH_DEBOUNCE_MS / 1000 + 0.05
    async with Poster(args.client, port) as http:
        await measure(port, http, f"bench-warm-{uuid.uuid4().hex[:8]}", 10, gap, catalogue)  # warm every process up
        if not args.load_only:
            idle_floor = await floor(port, args.samples)
            print(summary("floor: Celery task -> WebSocket", idle_floor,
                          f"(no answer in 5 s: {floor.missed})"), flush=True)
            probe = f"bench-idle-{uuid.uuid4().hex[:8]}"
            idle, missed = await measure(port, http, probe, args.samples, gap, catalogue)
            print(summary("idle: POST -> pushed list", idle, f"(no push: {missed})"), flush=True)
            print(summary("  of which the POST answered", measure.answered), flush=True)
            print(probe_path(read_trace(), probe, measure.walls), flush=True)
        # The other visitors run in a process of their own, as they would on other machines:
        # sharing this event loop, their 50 sockets and posts delayed the measured client's own
        # reads and posts (same cores still: the CPU they take is part of the load).
        mp = multiprocessing.get_context("spawn")
        stop, results = mp.Event(), mp.Queue()
        load = mp.Process(target=background_process, args=(port, args.bg_rate, args.bg_visitors, catalogue, stop, results,
                                                          args.client))
        load.start()
        await asyncio.sleep(3)  # let the load reach its rate
        load_started = time.time()
        wal_before = await asyncio.to_thread(wal_position)
        probe = f"bench-load-{uuid.uuid4().hex[:8]}"
        with cpucount.Phase() as cpu:
            loaded, missed = await measure(port, http, probe, args.samples, gap, catalogue)
        # The floor again, under the same load: a do-nothing realtime task waits for a free
        # worker like an event's cycle does, so this is the queueing + transport share.
        wal_bytes = await asyncio.to_thread(wal_position) - wal_before
        floor_loaded = await floor(port, 50)
        stop.set()
        counts = await asyncio.to_thread(results.get, True, 120)
        await asyncio.to_thread(load.join, 30)
        rate = counts["events"] / counts["seconds"]
        print(summary(f"load ({args.bg_rate}/s): POST -> pushed list", loaded, f"(no push: {missed})"), flush=True)
        print(summary("  of which the POST answered", measure.answered), flush=True)
        print(f"  background: {rate:.0f} events/s achieved from {args.bg_visitors} visitors with open sockets, "
              f"{counts['posts']} posts, {counts['pushes']} pushes received, {counts['errors']} errors; "
              f"posts sent in each tenth of the second: {counts['tenths']}", flush=True)
        print(summary("  floor under the load: task -> socket", floor_loaded,
                      f"(no answer in 5 s: {floor.missed})"), flush=True)
        print(cpu.report(), flush=True)
        print(f"  WAL written during the load: {wal_bytes / 1e6:.0f} MB, {wal_bytes / 1e6 / cpu.seconds:.1f} MB/s", flush=True)
        # CPU per push: steadier than the latency between runs on a shared machine (the same
        # code's p50 moved by 1.5x from run to run), so changes are compared on it as well.
        per_second = counts["pushes"] / counts["seconds"] + len(loaded) / cpu.seconds
        shares = cpu.shares()
        print(f"  CPU per push received ({per_second:.1f}/s): "
              + ", ".join(f"{role} {share * 1000 / per_second:.1f} ms" for role, share in shares.items())
              + f" (sum {sum(shares.values()) * 1000 / per_second:.1f} ms)", flush=True)
        traced = read_trace()  # one read for both reports
        print(cycle_report(traced, load_started, time.time()), flush=True)
        print(probe_path(traced, probe, measure.walls), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--bg-rate", type=int, default=200, help="background events per second")
    parser.add_argument("--bg-visitors", type=int, default=50)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp",
                        help="the HTTP client of the probe and the load (httpx costs the harness more CPU)")
    parser.add_argument("--load-only", action="store_true", help="skip the floor and idle phases")
    parser.add_argument("--keep-trace", action="store_true",
                        help="keep the cycle trace (one JSON line per realtime cycle) for a closer look")
    parser.add_argument("--rt-workers", type=int, default=None,
                        help="realtime Celery workers (default: the devstack's, LIVEREC_RT_WORKERS or 2)")
    parser.add_argument("--allow-strays", action="store_true",
                        help="run even when ASGI servers or Celery workers of another stack are running")
    args = parser.parse_args()
    others = cpucount.strays()
    if others and not args.allow_strays:
        sys.exit("bench_freshness: other LiveRec processes are running (they take CPU, and may write into this "
                 "stack's database); stop them or pass --allow-strays:\n  " + "\n  ".join(others))
    catalogue = ensure_catalogue()
    from tests.stack import start_stack

    os.environ["LIVEREC_CYCLE_TRACE"] = str(TRACE)  # inherited by the stack's workers

    stack = start_stack(dict(settings.DATABASES["default"]), realtime=args.rt_workers)
    try:
        print(f"stack up on port {stack.port}; realtime workers: {args.rt_workers or os.environ.get('LIVEREC_RT_WORKERS', 2)}; "
              f"PUSH_DEBOUNCE_MS={liverec.PUSH_DEBOUNCE_MS}; "
              f"{len(catalogue)} embedded items; {os.cpu_count()} CPUs; HTTP client {args.client}", flush=True)
        asyncio.run(run(args, stack.port, catalogue))
    finally:
        stack.stop()
        if args.keep_trace:
            print(f"cycle trace kept: {TRACE}", flush=True)
        else:
            TRACE.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
