"""Live push on the real stack: HTTP ingest -> Celery realtime worker -> Redis channel layer -> sockets."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import websockets

from recsys import attribution
from recsys.models import RecommendationLog, VisitorProfile
from recsys.live import lists
from recsys.tokens import make_token
from devstack.stack import wait_for
from tests.threads import in_thread
from tests.visitors import cookies, liverec_socket
from tracking import services

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _idle_after(realtime_worker_idle_after):
    yield


def post(stack, visitor, name, item_id, **props):
    event = {"id": str(uuid.uuid4()), "name": name, "item_id": str(item_id), "ts": int(time.time() * 1000),
             "props": props}
    resp = httpx.post(f"{stack.url}/liverec/events/", json={"site_key": "demo-site-key", "visitor_id": visitor,
                                                            "events": [event]}, cookies=cookies(visitor), timeout=10)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text


def append(visitor, item_id):
    (outcome,) = services.append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(item_id),
                                          "ts": int(time.time() * 1000)}], visitor_id=visitor)
    assert outcome.status == "accepted", outcome


def ws_uri(stack, visitor, slots="for-you", seq=0, token=None):
    token = token if token is not None else make_token(visitor)
    return f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={token}&slots={slots}&seq={seq}"


def connect(stack, *args, **kwargs):
    return liverec_socket(ws_uri(stack, *args, **kwargs), origin=f"http://127.0.0.1:{stack.port}")


async def recv(ws, timeout=15.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def drain(ws, quiet=1.5):
    """Every message until the socket has been quiet for ``quiet`` seconds."""
    out = []
    while True:
        try:
            out.append(await recv(ws, quiet))
        except asyncio.TimeoutError:
            return out


async def wait_profile(visitor, events):
    for _ in range(400):
        found = await in_thread(
            lambda: VisitorProfile.objects.filter(visitor_id=visitor, event_count__gte=events).exists())
        if found:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{visitor} never reached {events} events")


def current_items(stack, visitor, slot="for-you"):
    resp = httpx.get(f"{stack.url}/liverec/recs/{slot}/", headers={"X-LiveRec-Token": make_token(visitor)}, timeout=10)
    return [r["item_id"] for r in resp.json()["items"]]


def test_a_burst_of_ten_events_is_pushed_once_or_twice_and_ends_current(stack, embedded_catalogue):
    visitor = "visitor-burst-0001"

    async def scenario():
        async with connect(stack, visitor) as ws:
            first = await recv(ws)
            assert first["resync"] and first["key"] == "for-you"
            # Ten quick clicks, appended through the tracking service one by one (the HTTP layer
            # of this shared machine alone can spread ten requests over seconds).
            t0 = time.perf_counter()
            for item in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
                await in_thread(append, visitor, item)
            span = time.perf_counter() - t0
            await wait_profile(visitor, 10)
            return first, await drain(ws), span

    first, pushes, span = asyncio.run(scenario())
    assert 1 <= len(pushes) <= 2, ([m["seq"] for m in pushes], f"ten events appended in {span:.2f} s")
    assert all(m["type"] == "recs" and m["seq"] > first["seq"] for m in pushes)
    assert [m["seq"] for m in pushes] == sorted(m["seq"] for m in pushes)
    # The last push shows the state after all ten events: the list the endpoint computes now.
    assert [r["item_id"] for r in pushes[-1]["recs"]["items"]] == current_items(stack, visitor)
    logged = RecommendationLog.objects.filter(visitor_id=visitor, channel="push")  # written after each send
    assert logged.count() == len(pushes)
    assert set(logged.values_list("rec_id", flat=True)) == {m["recs"]["id"] for m in pushes}


def test_every_open_tab_gets_the_same_push(stack, embedded_catalogue):
    visitor = "visitor-tabs-0001"

    async def scenario():
        async with connect(stack, visitor) as tab1, connect(stack, visitor) as tab2:
            await recv(tab1), await recv(tab2)
            await asyncio.to_thread(post, stack, visitor, "item_viewed", 6)  # Alien
            return await recv(tab1), await recv(tab2)

    one, two = asyncio.run(scenario())
    assert one["seq"] == two["seq"] and not one.get("resync")
    assert one["recs"] == two["recs"]
    titles = [r["title"].rsplit(" (", 1)[0] for r in one["recs"]["items"]]
    assert titles and set(titles[:3]) <= {"Aliens", "The Terminator", "Star Wars", "Blade Runner"}, titles


def test_visitors_folded_together_each_get_their_own_list(stack, embedded_catalogue):
    """The worker ranks every visitor a fold touched in one batch (engine.recommend_many): each
    socket still gets its own visitor's list (their own exclusions, the list logged for them)."""
    visitors = [f"visitor-batch-{n:04d}" for n in range(3)]
    films = [6, 1, 50]  # Alien, Toy Story, Star Wars

    async def scenario():
        sockets = [await connect(stack, v).__aenter__() for v in visitors]
        try:
            for ws in sockets:
                await recv(ws)
            # Appended back to back: the worker's next fold usually holds all three.
            await in_thread(lambda: [append(v, f) for v, f in zip(visitors, films)])
            return [await recv(ws) for ws in sockets]
        finally:
            for ws in sockets:
                await ws.close()

    pushes = asyncio.run(scenario())
    lists = [[r["item_id"] for r in m["recs"]["items"]] for m in pushes]
    assert all(m["type"] == "recs" and not m.get("resync") for m in pushes)
    assert len({tuple(x) for x in lists}) == 3, lists
    for visitor, items, film, msg in zip(visitors, lists, films, pushes):
        assert str(film) not in items  # the film just viewed is excluded for its viewer
        # The list on this visitor's socket is the one logged as pushed to this visitor (the
        # worker writes its serve log after the pushes: wait for it).
        logged = wait_for(lambda: RecommendationLog.objects.filter(visitor_id=visitor, channel="push").first(),
                          what=f"the serve log of {visitor}")
        assert logged.rec_id == msg["recs"]["id"] and list(logged.items) == items


def test_a_reconnecting_client_resyncs_to_the_current_lists(stack, embedded_catalogue):
    visitor = "visitor-resync-01"

    async def scenario():
        async with connect(stack, visitor, slots="for-you,similar:1") as ws:
            before = {m["key"]: m for m in [await recv(ws), await recv(ws)]}
        # Offline meanwhile: the event is folded but nothing is pushed to anyone.
        await asyncio.to_thread(post, stack, visitor, "item_viewed", 1)  # Toy Story
        await wait_profile(visitor, 1)
        for _ in range(100):  # the worker marks the cached lists stale just after the fold commits
            if not await asyncio.to_thread(lists.cached_lists, visitor):
                break
            await asyncio.sleep(0.05)
        last_seen = max(m["seq"] for m in before.values())
        async with connect(stack, visitor, slots="for-you,similar:1", seq=last_seen) as ws:
            after = {m["key"]: m for m in [await recv(ws), await recv(ws)]}
        return before, after, last_seen

    before, after, last_seen = asyncio.run(scenario())
    assert set(after) == {"for-you", "similar:1"}
    assert all(m["resync"] and m["seq"] > last_seen for m in after.values())
    assert [r["item_id"] for r in after["for-you"]["recs"]["items"]] == current_items(stack, visitor)
    assert before["for-you"]["recs"]["items"] != after["for-you"]["recs"]["items"]
    # "similar:1" is the slot next to item 1: Toy Story itself is never in it.
    assert "1" not in [r["item_id"] for r in after["similar:1"]["recs"]["items"]]
    assert not RecommendationLog.objects.filter(visitor_id=visitor, channel="push").exists()


def test_message_numbers_never_go_back_after_the_counter_is_lost(stack, embedded_catalogue):
    visitor = "visitor-seqloss-1"

    async def scenario():
        async with connect(stack, visitor, seq=10_000_000) as ws:  # the page saw more than the server remembers
            return await recv(ws)

    assert asyncio.run(scenario())["seq"] > 10_000_000


def test_a_token_for_one_visitor_cannot_join_another_visitors_group(stack, embedded_catalogue):
    attacker, victim = "visitor-attacker", "visitor-victim01"
    mine = make_token(attacker)  # the attacker's own token, one character changed
    forged = mine[:30] + ("A" if mine[30] != "A" else "B") + mine[31:]
    expired = make_token(victim, issued_at=int(time.time()) - 3 * 24 * 3600)

    async def scenario():
        codes = []
        for token in (forged, expired, "", "garbage"):
            async with connect(stack, victim, token=token) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await recv(ws, 5)
                codes.append(closed.value.rcvd.code)
        return codes

    assert asyncio.run(scenario()) == [4401, 4401, 4401, 4401]


def test_bad_messages_close_the_socket_and_pings_are_answered(stack, embedded_catalogue):
    visitor = "visitor-protocol"

    async def scenario():
        async with connect(stack, visitor) as ws:
            await recv(ws)
            await ws.send('{"type": "ping"}')
            pong = await recv(ws)
            await ws.send('{"type": "subscribe", "slots": "for-you"}')
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws, 5)
            return pong, closed.value.rcvd.code

    assert asyncio.run(scenario()) == ({"type": "pong"}, 4400)


def test_impressions_and_clicks_are_attributed_to_slots_and_strategies(stack, embedded_catalogue):
    visitor = "visitor-ctr-0001"

    async def scenario():
        async with connect(stack, visitor) as ws:
            await recv(ws)
            await asyncio.to_thread(post, stack, visitor, "item_viewed", 6)
            return await recv(ws)

    pushed = asyncio.run(scenario())
    rec_id, items = pushed["recs"]["id"], [r["item_id"] for r in pushed["recs"]["items"]]
    for _ in range(100):  # written just after the send, so that the log never delays a push
        log = RecommendationLog.objects.filter(rec_id=rec_id).first()
        if log:
            break
        time.sleep(0.05)
    assert log.slot == "for-you" and log.items == items and log.seq == pushed["seq"]
    for rec in pushed["recs"]["items"]:
        assert log.strategies[rec["item_id"]] == sorted({r["strategy"] for r in rec["reasons"]})
    post(stack, visitor, "recommendation_shown", "", rec_id=rec_id, slot="for-you", items=items)
    post(stack, visitor, "recommendation_shown", "", rec_id=rec_id, slot="for-you", items=items)  # reported twice
    post(stack, visitor, "recommendation_clicked", items[0], rec_id=rec_id, slot="for-you", position=1)
    post(stack, visitor, "recommendation_clicked", items[1], rec_id="f" * 32, slot="for-you")  # unknown list
    rows = {r["strategy"]: r for r in attribution.click_through() if r["slot"] == "for-you"}
    expected_shown = {}
    for item in items:
        for sid in log.strategies[item]:
            expected_shown[sid] = expected_shown.get(sid, 0) + 1
    assert {sid: r["impressions"] for sid, r in rows.items()} == expected_shown
    clicked = set(log.strategies[items[0]])
    assert {sid for sid, r in rows.items() if r["clicks"]} == clicked
    assert all(rows[sid]["clicks"] == 1 and rows[sid]["ctr"] == round(1 / expected_shown[sid], 4) for sid in clicked)
