"""Attacks on the live path, on the real stack (uvicorn, Celery realtime worker, Valkey channel layer)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import websockets
from django.core.cache import cache
from django.db import transaction

from recsys.consumers import SEQ_ERROR
from recsys.cache import raw_key, redis_client
from recsys.live import keys, pushstate
from recsys.tokens import make_token
from tests.threads import in_thread
from tests.visitors import cookies, liverec_socket
from tracking import services

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _idle_after(realtime_worker_idle_after):
    yield


def connect(stack, visitor, query="slots=for-you"):
    return liverec_socket(f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token(visitor)}&{query}",
                          origin=f"http://127.0.0.1:{stack.port}")


async def recv(ws, timeout=20.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def next_push(ws, timeout=25.0):
    """The next list pushed to the socket (resync answers and pongs skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv(ws, max(0.1, deadline - time.monotonic()))
        if msg["type"] == "recs" and not msg.get("resync"):
            return msg


def view_together(visitors: list[str], item_id: str) -> None:
    """One event per visitor, committed together: the realtime worker folds them in one cycle."""
    with transaction.atomic():
        for visitor in visitors:
            (outcome,) = services.append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item_id,
                                                  "ts": int(time.time() * 1000)}], visitor_id=visitor)
            assert outcome.status == "accepted"


def test_huge_seq_numbers_get_an_error_frame_and_cost_no_one_their_pushes(stack, embedded_catalogue):
    attacker, victim = "visitor-seq-attacker", "visitor-seq-victim"

    async def scenario():
        async with connect(stack, attacker, "slots=for-you&seq=" + "9" * 31) as bad, connect(stack, victim) as good:
            url_error = await recv(bad)  # seq=10**31 - 1 in the URL: refused, the socket carries on
            first = await recv(bad)
            await recv(good)
            errors = []
            for seq in (2 ** 63 - 1, 10 ** 30, -1, "12", True, 1.5):
                await bad.send(json.dumps({"type": "resync", "slots": ["for-you"], "seq": seq}))
                errors.append(await recv(bad))
            await bad.send('{"type": "ping"}')
            pong = await recv(bad)
            pushes = 0
            for item in ("2", "6", "10"):  # each round's events folded in one realtime cycle
                await in_thread(view_together, [attacker, victim], item)
                await next_push(good)
                pushes += 1
                await asyncio.sleep(1.0)  # past the burst window: each round pushes at its leading edge
            await bad.send('{"type": "ping"}')  # the attacker's socket still serves too
            while (msg := await recv(bad))["type"] != "pong":
                assert msg["type"] == "recs", msg
            return url_error, first, errors, pong, pushes

    url_error, first, errors, pong, pushes = asyncio.run(scenario())
    assert url_error == {"type": "error", "error": SEQ_ERROR} and first["type"] == "recs"
    assert errors == [{"type": "error", "error": SEQ_ERROR}] * 6 and pong == {"type": "pong"}
    assert pushes == 3  # the victim got every push (0 of 3 when the attacker's counter overflowed)
    assert int(cache.get(keys.visitor_key("seq", attacker))) < pushstate.MAX_SEQ


def test_a_counter_left_at_the_64_bit_maximum_restarts_and_fails_no_ones_push(stack, embedded_catalogue):
    attacker, victim = "visitor-seq-poisoned", "visitor-seq-bystander"

    async def scenario():
        async with connect(stack, attacker) as bad, connect(stack, victim) as good:
            await recv(bad)
            await recv(good)
            # The state a pre-fix attack left behind: INCR on it overflows.
            await asyncio.to_thread(cache.set, keys.visitor_key("seq", attacker), 2 ** 63 - 1, None)
            await in_thread(view_together, [attacker, victim], "3")
            return await next_push(good), await next_push(bad)

    to_victim, to_attacker = asyncio.run(scenario())
    assert to_victim["key"] == "for-you" and 1 <= to_attacker["seq"] < pushstate.MAX_SEQ


def test_every_push_state_key_expires(stack, embedded_catalogue):
    visitor = "visitor-ttl-check"

    async def scenario():
        async with connect(stack, visitor) as ws:
            await recv(ws)
            await in_thread(view_together, [visitor], "4")
            await next_push(ws)

    asyncio.run(scenario())
    client = redis_client()
    names = [keys.visitor_key(kind, visitor) for kind in ("seq", "epoch", "lists", "last")]
    names += [f"{keys.visitor_key('sig', visitor)}:for-you"]
    ttls = {name: client.ttl(raw_key(name)) for name in names}
    assert all(ttl > 0 for ttl in ttls.values()), ttls  # -1: no expiry, -2: missing


def test_a_token_in_the_socket_url_is_refused(stack):
    async def scenario():
        uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token('visitor-url-token')}&slots=for-you"
        async with websockets.connect(uri, origin=f"http://127.0.0.1:{stack.port}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws, 10)
            return closed.value.rcvd.code, closed.value.rcvd.reason

    code, reason = asyncio.run(scenario())
    assert code == 4401 and "URL" in reason


def test_x_forwarded_for_from_a_direct_client_does_not_change_its_address(stack):
    """uvicorn trusts X-Forwarded-For from loopback by default (--forwarded-allow-ips); the stack
    runs it with --no-proxy-headers, so a client rotating the header is still one address."""
    from tracking.ratelimit import _pseudonym

    visitor = "visitor-xff-rotation"
    spoofed = [f"203.0.113.{n}" for n in range(1, 6)]
    window = int(time.time() // 60)
    for address in spoofed:
        body = {"site_key": "demo-site-key", "events": [{"id": str(uuid.uuid4()), "name": "page_viewed",
                                                         "ts": int(time.time() * 1000)}]}
        resp = httpx.post(f"{stack.url}/liverec/events/", json=body, cookies=cookies(visitor),
                          headers={"X-Forwarded-For": address}, timeout=10)
        assert resp.status_code == 200, resp.text

    def counted(ip):
        return sum(int(cache.get(f"lr:rl:ip:{_pseudonym(ip)}:{w}") or 0) for w in (window, window + 1))

    assert counted("127.0.0.1") == 5 and all(counted(a) == 0 for a in spoofed)
