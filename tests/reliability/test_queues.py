"""Batch work never waits behind LLM summaries (their own queue and worker), summaries coalesce
per visitor, and presence expires within about a minute of a lost socket. Real Valkey, real
Celery workers (the demo's commands), the real test database."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from devstack.__main__ import supervisor, worker_commands
from recsys.models import Item, VisitorProfile
from recsys.services import push
from recsys.services import summaries as summary_service
from recsys.tasks import BATCH, SUMMARIES, summarize_visitor
from tests.stack import ROOT, wait_for


def queued_for(visitor_id: str) -> dict[str, int]:
    """Summary tasks of the visitor waiting in each queue (Celery's Redis lists)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return {q: sum(visitor_id in json.loads(m)["headers"].get("argsrepr", "") for m in client.lrange(q, 0, -1))
                for q in (BATCH, SUMMARIES)}
    finally:
        client.close()


def test_the_batch_worker_takes_no_summaries_and_a_summaries_worker_does():
    commands = dict(worker_commands(sys.executable, realtime=1))
    batch, summ = commands["batch"], commands["summ"]
    assert batch[batch.index("-Q") + 1] == BATCH
    assert summ[summ.index("-Q") + 1] == SUMMARIES
    assert summarize_visitor.queue == SUMMARIES


@pytest.mark.django_db(transaction=True)
def test_summaries_coalesce_per_visitor_however_long_the_queue_waits(monkeypatch):
    monkeypatch.setattr(summary_service, "get_summarizer", lambda: type("On", (), {"enabled": True})())
    visitor = "visitor-coalesce-summary"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(SUMMARIES)
    try:
        for _ in range(5):  # five realtime cycles touch the visitor while its summary waits
            summary_service.request_summaries([visitor, "visitor-coalesce-other"])
        assert queued_for(visitor) == {BATCH: 0, SUMMARIES: 1}
        # The flag lives until the task starts (not the debounce + 60 s it had): a summaries
        # backlog of half an hour (978 waiting at ~2 s each) still lets no second one in.
        flag = cache.make_and_validate_key(summary_service.pending_key(visitor))
        assert cache._cache.get_client(None).ttl(flag) >= 30 * 60
    finally:
        client.delete(SUMMARIES)
        client.close()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_an_item_is_embedded_while_summaries_wait_for_their_own_worker(stack, film_factory):
    visitors = [f"visitor-summ-{i}" for i in range(6)]
    VisitorProfile.objects.bulk_create([VisitorProfile(visitor_id=v, interests=[{"label": "space opera", "weight": 1.0}])
                                        for v in visitors])
    for v in visitors:  # six summaries queued ahead of the item (a burst of visitors)
        summarize_visitor.apply_async((v,))
    film_factory("Solaris", ["Drama", "Sci-Fi"])
    # The session's batch worker embeds it; no summary runs anywhere yet (no summaries worker).
    wait_for(lambda: Item.objects.filter(title__startswith="Solaris", embedding__isnull=False).exists(), timeout=240,
             what="the film embedded")
    assert not VisitorProfile.objects.exclude(summary="").exists()

    env = {**stack.env, "LIVEREC_SUMMARY_BACKEND": "tests.reliability.summarizers.SlowSummarizer"}
    sup = supervisor(env)
    try:
        sup.start("summ", dict(worker_commands(sys.executable, realtime=0))["summ"])
        wait_for(lambda: VisitorProfile.objects.filter(summary="Likes slow films.").count() == len(visitors),
                 timeout=240, interval=0.2, what="every summary written by the summaries worker")
    finally:
        sup.stop()


@pytest.mark.django_db
def test_presence_expires_within_a_minute_of_a_lost_socket():
    visitor = "visitor-presence-ttl"
    push.socket_opened(visitor, ["for-you"])
    client = cache._cache.get_client(None)
    for kind in ("online", "slots"):
        assert 0 < client.ttl(cache.make_and_validate_key(push._key(kind, visitor))) <= 60
    # The widget's heartbeat refreshes presence at least twice within its lifetime.
    widget = (Path(ROOT) / "recsys" / "static" / "recsys" / "widget.js").read_text()
    ping_ms = int(re.search(r"PING_MS = (\d+)", widget).group(1))
    assert 2 * ping_ms <= push.PRESENCE_TTL * 1000
    push.socket_alive(visitor, ["for-you"])
    assert push.open_slots(visitor) == ["for-you"]
    push.socket_closed(visitor)
    assert push.open_slots(visitor) == []
