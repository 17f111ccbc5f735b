"""The thin path across real processes: HTTP ingest -> log -> Celery -> pgvector -> WebSocket."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import numpy as np
import pytest

import websockets

from recsys.models import VisitorProfile
from recsys.tokens import make_token
from tests.stack import wait_for
from tests.visitors import cookies, liverec_socket
from tracking.models import Event

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def post_events(stack, visitor, *items):
    events = [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(i), "ts": int(time.time() * 1000)}
              for i in items]
    resp = httpx.post(f"{stack.url}/liverec/events/", json={"site_key": "demo-site-key", "visitor_id": visitor,
                                                            "events": events}, cookies=cookies(visitor), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == len(items)




def test_health_is_200_with_every_component_up(stack):
    resp = httpx.get(f"{stack.url}/liverec/health/", timeout=30)
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["database"]["pgvector"].startswith("0.8")
    assert body["worker"]["dim"] == 384 and body["model"]["loaded"]
    # The worker warmed up and froze its start-up heap (recsys.warmup): Django, torch and the
    # encoder are several hundred thousand objects, none of them garbage.
    assert body["worker"]["frozen_objects"] > 100_000
    assert body["channel_layer"]["ok"] and body["broker"]["ok"]


def test_an_event_moves_the_interest_vector_in_pgvector(stack, embedded_catalogue):
    post_events(stack, "visitor-pipeline1", 1)
    profile = wait_for(lambda: VisitorProfile.objects.filter(visitor_id="visitor-pipeline1", event_count=1).first())
    from recsys.models import Item

    toy = np.asarray(Item.objects.get(item_id="1").embedding)
    vec = np.asarray(profile.long_term)
    assert float(vec @ toy / np.linalg.norm(vec)) > 0.99
    assert Event.objects.filter(visitor_id="visitor-pipeline1").count() == 1


def _broker_client():
    from celery import current_app

    return current_app.connection_for_write().default_channel.client


def test_the_websocket_receives_a_refreshed_list_after_an_event(stack, embedded_catalogue):
    from recsys import stats

    visitor = "visitor-ws-0001"
    _broker_client().delete(stats.PUSH_LATENCY_KEY)

    async def scenario():
        uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token={make_token(visitor)}"
        async with liverec_socket(uri, origin=f"http://127.0.0.1:{stack.port}") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["type"] == "recs" and first["slot"] == "for-you"
            await asyncio.to_thread(post_events, stack, visitor, 6, 7)  # Alien, Aliens
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if msg["seq"] > first["seq"]:
                    return msg

    msg = asyncio.run(scenario())
    titles = [r["title"] for r in msg["recs"]["items"]]
    assert titles, msg
    # Sci-fi follows sci-fi: the top picks are the other sci-fi films, each with a reason.
    assert set(titles[:2]) <= {"The Terminator (1995)", "Star Wars (1995)", "Blade Runner (1995)"}, titles
    assert all(r["reasons"] for r in msg["recs"]["items"])
    # The push was timed from the event's arrival, for the admin dashboard's latency chart.
    latency = wait_for(lambda: stats.push_latency()["count"] and stats.push_latency())
    assert 0 <= latency["p50"] < 60_000


def test_associations_and_trending_follow_the_log_on_the_batch_worker(stack, embedded_catalogue):
    """The realtime task pushes, then asks the batch worker to fold the item pairs and the
    popularity; both projections catch up with the log without anything else asking."""
    from recsys.models import ItemAssociation, ItemPopularity, ProjectionCursor

    post_events(stack, "visitor-assoc-1", 6, 7)  # Alien, then Aliens: one pair
    pair = wait_for(lambda: ItemAssociation.objects.filter(item_a__in=["6", "7"], item_b__in=["6", "7"]).first(),
                    what="the pair")
    assert pair.weight > 0
    assert set(ItemPopularity.objects.values_list("item_id", flat=True)) >= {"6", "7"}
    last = Event.objects.order_by("-txid", "-id").values_list("id", flat=True).first()
    wait_for(lambda: ProjectionCursor.objects.filter(name="cooccurrence", position=last).exists(),
             what="the association cursor at the end of the log")


def test_a_forged_token_cannot_join(stack):
    async def scenario():
        uri = f"ws://127.0.0.1:{stack.port}/liverec/ws/?token=visitor-victim:forged:sig"
        async with liverec_socket(uri, origin=f"http://127.0.0.1:{stack.port}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code

    assert asyncio.run(scenario()) == 4401
