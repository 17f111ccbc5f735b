"""WebSockets under faults and abuse: an ASGI restart is survived by reconnect + resync;
malformed or oversized messages close the socket cleanly and never take the consumer down."""
from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import httpx
import pytest
import websockets

from recsys.tokens import make_token
from tests.visitors import cookies, liverec_socket

from . import procs

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def post_views(base: str, visitor: str, *items: str) -> None:
    events = [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": i, "ts": int(time.time() * 1000)}
              for i in items]
    resp = httpx.post(f"{base}/liverec/events/", json={"site_key": "demo-site-key", "visitor_id": visitor,
                                                       "events": events}, cookies=cookies(visitor), timeout=10)
    assert resp.status_code == 200 and resp.json()["accepted"] == len(items), resp.text


async def recv_recs(ws, timeout: float = 20.0) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg["type"] == "recs":
            return msg


def test_widget_reconnects_and_resyncs_after_the_asgi_server_restarts(stack, embedded_catalogue):
    """What widget.js does on close: reconnect with backoff and the same token, then resync."""
    visitor = "visitor-asgi-restart"
    port = procs.free_port()
    base, uri = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/liverec/ws/?token={make_token(visitor)}"
    sup = procs.Supervisor(stack.env)

    async def connect_with_backoff():
        delay = 0.2
        for _ in range(60):
            try:
                return await liverec_socket(uri, origin=base)
            except (OSError, websockets.InvalidHandshake):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("could not reconnect")

    async def scenario():
        ws = await connect_with_backoff()
        first = await recv_recs(ws)
        await asyncio.to_thread(procs.kill, web, signal.SIGKILL)  # the server dies without a goodbye
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        await asyncio.to_thread(procs.start_web, sup, port, "web2")
        ws = await connect_with_backoff()
        resynced = await recv_recs(ws)  # a fresh connection resyncs at once
        await ws.send(json.dumps({"type": "resync", "slots": ["for-you"]}))
        asked = await recv_recs(ws)
        await asyncio.to_thread(post_views, base, visitor, "6", "7")
        while True:  # and pushes reach the new connection
            pushed = await recv_recs(ws, 30)
            if pushed["seq"] > asked["seq"]:
                break
        await ws.close()
        return first, resynced, asked, pushed

    try:
        web = procs.start_web(sup, port)
        first, resynced, asked, pushed = asyncio.run(scenario())
    finally:
        sup.stop()
    # A resync of unchanged state repeats its sequence number (the lists are reused until the
    # visitor's next folded event); the push after new events is strictly newer.
    assert first["seq"] <= resynced["seq"] <= asked["seq"] < pushed["seq"]
    assert resynced["slot"] == "for-you" and pushed["recs"]["items"]  # a cold visitor may start empty


BAD_MESSAGES = [
    ("not JSON", "{type: resync"),
    ("JSON but not an object", "[1, 2, 3]"),
    ("a bare string", '"resync"'),
    ("unknown type", json.dumps({"type": "drop_tables"})),
    ("slots not a list", json.dumps({"type": "resync", "slots": "for-you"})),
    ("slots of numbers", json.dumps({"type": "subscribe", "slots": [1, 2]})),
    ("oversized", json.dumps({"type": "resync", "slots": ["x" * 10_000]})),
    ("deeply nested", "[" * 2000 + "]" * 2000),
    ("binary frame", b"\x00\xff\xfe binary"),
]


@pytest.mark.parametrize("label,message", BAD_MESSAGES, ids=[b[0] for b in BAD_MESSAGES])
def test_a_bad_message_closes_the_socket_cleanly_and_the_server_keeps_serving(stack, label, message):
    uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token('visitor-ws-fuzz')}"
    origin = f"http://127.0.0.1:{stack.port}"

    async def scenario():
        async with liverec_socket(uri, origin=origin, max_size=2**20) as ws:
            await recv_recs(ws)
            await ws.send(message)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            code = closed.value.rcvd.code if closed.value.rcvd else None
        # The consumer is still there for the next visitor.
        async with liverec_socket(uri, origin=origin) as ws:
            ok = await recv_recs(ws)
        return code, ok

    code, ok = asyncio.run(scenario())
    assert code == 4400, f"{label}: closed with {code}"
    assert ok["slot"] == "for-you"


def test_unknown_slots_are_answered_not_fatal(stack):
    uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token('visitor-ws-slots')}"

    async def scenario():
        async with liverec_socket(uri, origin=f"http://127.0.0.1:{stack.port}") as ws:
            await recv_recs(ws)
            await ws.send(json.dumps({"type": "subscribe", "slots": ["<script>alert(1)</script>"]}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"type": "ping"}))
            while True:  # the socket stays usable
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] == "pong":
                    return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "error" and reply["slot"] == "<script>alert(1)</script>"


def test_an_unpaired_surrogate_in_a_slot_name_never_crashes_the_consumer(stack):
    uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token('visitor-ws-surrogate')}"
    origin = f"http://127.0.0.1:{stack.port}"

    async def scenario():
        async with liverec_socket(uri, origin=origin) as ws:
            await recv_recs(ws)
            await ws.send('{"type": "subscribe", "slots": ["\\ud800"]}')
            try:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                outcome = reply["type"]
            except websockets.ConnectionClosed as closed:
                outcome = closed.rcvd.code if closed.rcvd else None
        async with liverec_socket(uri, origin=origin) as ws:  # still serving
            return outcome, await recv_recs(ws)

    outcome, ok = asyncio.run(scenario())
    assert outcome in ("error", 4400), outcome  # refused as data or closed cleanly, never 1011
    assert ok["slot"] == "for-you"


def test_sockets_from_foreign_origins_and_with_expired_tokens_are_refused(stack, settings):
    good = make_token("visitor-ws-origin")

    async def foreign_origin():
        uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={good}"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with liverec_socket(uri, origin="https://evil.example"):
                pass
        return refused.value.response.status_code

    assert asyncio.run(foreign_origin()) == 403

    # A token signed two days ago (TOKEN_MAX_AGE_SECONDS is one day) is refused with 4401.
    stale_token = make_token("visitor-ws-origin", issued_at=int(time.time()) - 2 * 86400)

    async def expired():
        uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={stale_token}"
        async with liverec_socket(uri, origin=f"http://127.0.0.1:{stack.port}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code

    assert asyncio.run(expired()) == 4401
