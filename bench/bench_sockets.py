"""Concurrent WebSockets held by one ASGI process (uvicorn) with pushes flowing.

    python -m devstack run -- python bench/bench_sockets.py [--max 2000] [--step 500]

Starts the real stack (one uvicorn process, the Celery workers, Valkey channel layer) and ramps
real clients, two sockets (tabs) per visitor, in steps. Every socket goes through the real
connect path (token check, group join, presence, a resync that ranks its list). While sockets are
held, real pushes flow: a bounded loop posts a view for a random held visitor 4 times a second
(fold, rank, group_send to both tabs). At each level it reports the connect rate, the Celery task
-> WebSocket probe latency to random held sockets, the pushes received, dropped sockets and the
uvicorn process's resident memory. Loopback only; every loop is bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from pathlib import Path

from bench_freshness import SITE_KEY, ensure_catalogue, event, pct  # noqa: I001  (sets up Django)
from bench import prodenv  # noqa: E402  (the server key bench_freshness set up)

import httpx
import websockets
from django.conf import settings

from recsys.tokens import make_token


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Fleet:
    def __init__(self, port: int):
        self.port = port
        self.sockets: list[tuple[str, object]] = []
        self.readers: list[asyncio.Task] = []
        self.probes: dict[str, float] = {}
        self.pushes = 0
        self.dropped = 0

    async def open(self, visitor: str) -> None:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/liverec/ws/?slots=for-you",
            origin=f"http://127.0.0.1:{self.port}", max_queue=None, open_timeout=60, ping_interval=None)
        await ws.send(json.dumps({"type": "auth", "token": make_token(visitor)}))  # as widget.js does
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert first["type"] == "recs", first
        self.sockets.append((visitor, ws))
        self.readers.append(asyncio.create_task(self.read(ws)))

    async def read(self, ws) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "probe" and msg["nonce"] in self.probes and self.probes[msg["nonce"]] < 1e9:
                    self.probes[msg["nonce"]] = (time.perf_counter() - self.probes[msg["nonce"]]) * 1000 + 1e9
                elif msg.get("type") == "recs":
                    self.pushes += 1
        except websockets.ConnectionClosed:
            self.dropped += 1

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for _, ws in self.sockets), return_exceptions=True)
        for task in self.readers:
            task.cancel()


async def probe(fleet: Fleet, samples: int) -> list[float]:
    from recsys.tasks import probe_push

    visitors = sorted({v for v, _ in fleet.sockets})
    out = []
    for _ in range(samples):
        nonce = uuid.uuid4().hex
        fleet.probes[nonce] = time.perf_counter()
        await asyncio.to_thread(probe_push.apply_async, (random.choice(visitors), nonce))
        for _ in range(500):  # bounded wait: 5 s
            if fleet.probes[nonce] >= 1e9:
                out.append(fleet.probes.pop(nonce) - 1e9)
                break
            await asyncio.sleep(0.01)
        else:
            fleet.probes.pop(nonce)
        await asyncio.sleep(0.05)
    return out


async def pushes_flowing(port: int, fleet: Fleet, catalogue: list[str], stop: asyncio.Event) -> int:
    posted = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 headers=prodenv.SERVER_KEY_HEADERS) as http:
        while not stop.is_set():
            if fleet.sockets:
                visitor = random.choice(fleet.sockets)[0]
                r = await http.post("/liverec/events/", json={"site_key": SITE_KEY, "visitor_id": visitor,
                                                              "events": [event(random.choice(catalogue))]})
                posted += r.status_code == 200
            await asyncio.sleep(0.25)
    return posted


async def run(args, port: int, web_pid: int, catalogue: list[str]) -> None:
    fleet = Fleet(port)
    stop = asyncio.Event()
    flow = asyncio.create_task(pushes_flowing(port, fleet, catalogue, stop))
    gate = asyncio.Semaphore(args.concurrency)

    async def one(visitor: str) -> None:
        async with gate:
            await fleet.open(visitor)

    print(f"{'sockets':>8} {'connect/s':>10} {'probe p50':>10} {'probe p99':>10} {'pushes':>7} {'dropped':>8} {'RSS MB':>7}",
          flush=True)
    try:
        level = 0
        while level < args.max:
            target = min(args.max, level + args.step)
            visitors = [f"bench-sock-{uuid.uuid4().hex[:12]}" for _ in range((target - level) // 2)]
            t0 = time.perf_counter()
            results = await asyncio.gather(*(one(v) for v in visitors for _ in range(2)), return_exceptions=True)
            took = time.perf_counter() - t0
            failed = [r for r in results if isinstance(r, BaseException)]
            level = len(fleet.sockets)
            lat = await probe(fleet, args.probes)
            print(f"{level:>8} {(len(results) - len(failed)) / took:>10.1f} "
                  f"{pct(lat, 50) if lat else float('nan'):>8.1f}ms {pct(lat, 99) if lat else float('nan'):>8.1f}ms "
                  f"{fleet.pushes:>7} {fleet.dropped:>8} {rss_mb(web_pid):>7.0f}"
                  + (f"  ({len(failed)} connects failed: {failed[0]!r})" if failed else ""), flush=True)
            if failed or len(lat) < args.probes:
                print("stopping the ramp: connects failed or probes were lost", flush=True)
                break
    finally:
        stop.set()
        posted = await flow
        print(f"held {len(fleet.sockets)} sockets in one uvicorn process; {posted} events posted while ramping, "
              f"{fleet.pushes} pushes received, {fleet.dropped} sockets dropped", flush=True)
        await fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=2000)
    parser.add_argument("--step", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20, help="connects in flight")
    parser.add_argument("--probes", type=int, default=30)
    args = parser.parse_args()
    catalogue = ensure_catalogue()
    from tests.stack import start_stack

    stack = start_stack(dict(settings.DATABASES["default"]))
    try:
        web = next(proc for name, proc in stack.supervisor.procs if name == "web")
        asyncio.run(run(args, stack.port, web.pid, catalogue))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
