"""Helpers of the fault tests: a tracker-like poster over the real HTTP ingest, live pushes over
the real socket, the health endpoint, and the demo's processes under its own supervisor."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import httpx

from recsys.tokens import make_token
from tests.visitors import cookie_header, liverec_socket


def _as(batch: dict) -> dict[str, str]:
    """The batch's visitor's signed cookie, as its browser would send it."""
    return {"Cookie": cookie_header(batch["visitor_id"])}


class Poster:
    """Posts a batch every ``interval`` seconds from a thread, as the tracker does: a batch not
    answered 2xx is sent again, with the same event ids, until it is. ``accepted`` holds the id
    of every event a 2xx answer accepted or found a duplicate of."""

    def __init__(self, url: str, visitors: list[str], items: list[str], interval: float = 0.25):
        self.url, self.visitors, self.items, self.interval = url, visitors, items, interval
        self.accepted: set[str] = set()
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def _batch(self) -> dict:
        self._n += 1
        visitor = self.visitors[self._n % len(self.visitors)]
        item = self.items[self._n % len(self.items)]
        return {"site_key": "demo-site-key", "visitor_id": visitor,
                "events": [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item,
                            "ts": int(time.time() * 1000)}]}

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            pending = None
            while not self._stop.is_set():
                pending = pending or self._batch()
                try:
                    resp = http.post(self.url, json=pending, headers=_as(pending))
                    self.statuses.append(resp.status_code)
                    if 200 <= resp.status_code < 300:
                        body = resp.json()
                        assert body["accepted"] + body.get("duplicate", 0) == len(pending["events"]), body
                        self.accepted.update(e["id"] for e in pending["events"])
                        pending = None
                except httpx.HTTPError:
                    self.statuses.append(0)
                self._stop.wait(self.interval)
            while pending is not None:  # the tracker flushes what it holds before the page goes
                resp = http.post(self.url, json=pending, headers=_as(pending))
                if 200 <= resp.status_code < 300:
                    self.accepted.update(e["id"] for e in pending["events"])
                    pending = None
                else:
                    time.sleep(0.5)

    def start(self) -> "Poster":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def health(base: str, timeout: float = 10.0) -> tuple[int, dict, float]:
    """GET the health endpoint: status, body and how long it took."""
    start = time.perf_counter()
    resp = httpx.get(f"{base}/liverec/health/", timeout=timeout)
    return resp.status_code, resp.json(), time.perf_counter() - start


def push_after(base: str, port: int, visitor: str, items: list[str], timeout: float = 120.0) -> dict:
    """Open the visitor's socket, post views of ``items``, and return the first push after them."""
    url = f"{base}/liverec/events/"

    async def run() -> dict:
        uri = f"ws://127.0.0.1:{port}/liverec/ws/?token={make_token(visitor)}"
        async with liverec_socket(uri, origin=base) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            batch = {"site_key": "demo-site-key", "visitor_id": visitor,
                     "events": [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": i,
                                 "ts": int(time.time() * 1000)} for i in items]}
            resp = await asyncio.to_thread(httpx.post, url, json=batch, headers=_as(batch), timeout=30)
            assert resp.status_code == 200, resp.text
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if msg.get("type") == "recs" and msg["seq"] > first.get("seq", 0):
                    return msg

    return asyncio.run(run())
