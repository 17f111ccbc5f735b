"""Forget erases every per-visitor store (one registry): no table row and no Redis key of the
visitor is left, and a new event afterwards starts a new session. Real PostgreSQL and Valkey."""
from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

from recsys.models import RecommendationLog, VisitorSequenceState, VisitorTopics
from recsys.services import audit, interests, push
from recsys.services import summaries as summary_service
from recsys.tasks import summarize_visitor
from tracking import cachekeys, privacy, ratelimit, services
from tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR, OTHER = "visitor-forget-every", "visitor-stays-here"


def view(item: str) -> dict:
    return {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item, "ts": int(time.time() * 1000)}


def traces(visitor_id: str) -> list[str]:
    """Every form a visitor's id takes in a key name or a row: raw, the key pseudonym, the
    channel-layer group hash."""
    return [visitor_id, cachekeys.visitor_digest(visitor_id), hashlib.sha256(visitor_id.encode()).hexdigest()[:40]]


def redis_keys_naming(visitor_id: str) -> list[str]:
    """SCAN of every key in every Redis database the site uses (broker, channel layer, cache)."""
    found = []
    for url in {settings.REDIS_URL, settings.CACHE_URL}:
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(count=1000):
                name = key.decode(errors="replace")
                if any(t in name for t in traces(visitor_id)):
                    found.append(name)
        finally:
            client.close()
    return found


def rows_naming(visitor_id: str) -> dict[str, int]:
    """Every table's rows whose text (all columns) holds any trace of the visitor."""
    out = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} t WHERE " + " OR ".join(
                ["position(%s in t::text) > 0"] * len(traces(visitor_id))), traces(visitor_id))
            n = cursor.fetchone()[0]
            if n:
                out[table] = n
    return out


def fill_every_store(visitor_id: str, monkeypatch) -> str:
    """What a visitor leaves behind in a live site; returns their session id."""
    services.append_events([view("1"), view("2")], visitor_id=visitor_id)  # last event, bot flag, rate counters
    assert ratelimit.check(visitor_id, "203.0.113.9", 2).allowed  # per-visitor rate-limit counter
    interests.catch_up()  # profile
    push.socket_opened(visitor_id, ["for-you"])  # presence, open slots
    push.profiles_changed([visitor_id])  # sequence, lists, epoch, burst state, pushed signatures
    monkeypatch.setattr(summarize_visitor, "apply_async", lambda *a, **kw: None)  # the flag, not the LLM
    summary_service.request_summaries([visitor_id])
    VisitorSequenceState.objects.create(visitor_id=visitor_id, model_id=1, basis=1, state=b"")
    VisitorTopics.objects.create(visitor_id=visitor_id, distribution={"0": 1.0})
    RecommendationLog.objects.create(rec_id=f"rec-{uuid.uuid4().hex[:8]}", visitor_id=visitor_id, slot="for-you",
                                     channel="page", items=["3"])
    audit.record("admin", "export_visitor", visitor_id, {"events": 2})
    return Event.objects.filter(visitor_id=visitor_id).values_list("session_id", flat=True).first()


def test_forget_leaves_no_row_and_no_redis_key_of_the_visitor(embedded_catalogue, monkeypatch):
    session_before = fill_every_store(VISITOR, monkeypatch)
    fill_every_store(OTHER, monkeypatch)
    before = redis_keys_naming(VISITOR)
    # Key names carry the pseudonym, never the raw id, and the listing does find them.
    assert before and not [k for k in before if VISITOR in k]
    for kind in ("lr:last", "lr:bot", "lr:rate", "lr:rl:visitor", "liverec:online", "liverec:slots",
                 "liverec:seq", "liverec:lists", "liverec:epoch", "liverec:sig", "liverec:summary:pending"):
        assert any(f"{kind}:" in k for k in before), f"no {kind} key before the forget: {before}"
    assert set(rows_naming(VISITOR)) >= {"tracking_event", "recsys_visitorprofile", "recsys_visitortopics",
                                         "recsys_visitorsequencestate", "recsys_recommendationlog",
                                         "recsys_auditentry"}

    report = privacy.forget_visitor(VISITOR)

    assert {f"{s.name}_deleted" for s in privacy.stores()} <= set(report)
    assert redis_keys_naming(VISITOR) == []
    assert rows_naming(VISITOR) == {}
    # The other visitor keeps everything.
    assert len(redis_keys_naming(OTHER)) == len(before)
    assert "recsys_visitortopics" in rows_naming(OTHER)
    # A new event after the forget starts a new session: no state survived to continue the old one.
    services.append_events([view("6")], visitor_id=VISITOR)
    assert Event.objects.get(visitor_id=VISITOR).session_id != session_before


def test_a_registered_store_is_forgotten_and_exported_without_a_hand_list(monkeypatch):
    erased = []

    class Notes(privacy.VisitorStore):
        name, exportable = "notes", True

        def forget(self, visitor_id: str) -> int:
            erased.append(visitor_id)
            return 1

        def export(self, visitor_id: str) -> list[dict]:
            return [{"note": f"about {visitor_id}"}]

    monkeypatch.setattr(privacy, "_stores", dict(privacy._stores))
    privacy.register_store(Notes())
    assert privacy.export_visitor("visitor-notes")["notes"] == [{"note": "about visitor-notes"}]
    assert privacy.forget_visitor("visitor-notes")["notes_deleted"] == 1 and erased == ["visitor-notes"]
    with pytest.raises(ValueError, match="kind 'disk'.*valid"):
        privacy.register_store(type("Disk", (privacy.VisitorStore,), {"name": "disk", "kind": "disk"})())
    with pytest.raises(ValueError, match="already registered"):
        privacy.register_store(type("Other", (privacy.VisitorStore,), {"name": "notes"})())
