"""The ingest endpoint against the real PostgreSQL: outcomes, errors, append-only log."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.visitors import as_visitor
from tracking.models import Event

pytestmark = pytest.mark.django_db

URL = "/liverec/events/"


def post(client, payload, **headers):
    as_visitor(client, payload)
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", **headers)


def batch(*events, visitor="visitor-abc123"):
    return {"site_key": "demo-site-key", "visitor_id": visitor, "sent_at": int(time.time() * 1000), "events": list(events)}


def view(item="1", **kw):
    return {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item, "ts": int(time.time() * 1000), **kw}


def test_valid_events_are_stored_even_next_to_bad_ones(client):
    good, bad = view("7"), {"id": "nope", "name": "item_viewed", "item_id": "8"}
    resp = post(client, batch(good, bad))
    assert resp.status_code == 200
    data = resp.json()
    assert (data["accepted"], data["rejected"]) == (1, 1)
    assert data["events"][1]["reason"] == "id must be a UUID"
    stored = Event.objects.get()
    assert (stored.uuid, stored.item_id, stored.visitor_id) == (uuid.UUID(good["id"]), "7", "visitor-abc123")
    assert stored.session_id and stored.received_at


def test_resending_a_batch_is_harmless(client):
    payload = batch(view("1"), view("2"))
    post(client, payload)
    again = post(client, payload).json()
    assert again["duplicate"] == 2 and again["accepted"] == 0
    assert Event.objects.count() == 2


def test_malformed_json_is_a_400_with_the_reason(client):
    resp = post(client, b"{not json")
    assert resp.status_code == 400 and "malformed JSON" in resp.json()["error"]
    assert Event.objects.count() == 0


def test_body_over_the_limit_is_a_413(client):
    resp = post(client, batch(view(props={"x": "y" * 70000})))
    assert resp.status_code == 413


def test_a_foreign_origin_is_refused_and_preflight_answered(client):
    resp = post(client, batch(view()), HTTP_ORIGIN="https://evil.example")
    assert resp.status_code == 403 and "ALLOWED_ORIGINS" in resp.json()["error"]
    ok = client.options(URL, HTTP_ORIGIN="http://localhost:8000")
    assert ok.status_code == 204 and ok["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert Event.objects.count() == 0


def test_wrong_site_key_is_refused(client):
    payload = batch(view())
    payload["site_key"] = "other"
    assert post(client, payload).status_code == 403


def test_events_of_one_visitor_share_a_session(client):
    post(client, batch(view("1"), view("2")))
    post(client, batch(view("3")))
    assert Event.objects.values("session_id").distinct().count() == 1


def test_the_log_is_append_only(client):
    post(client, batch(view("1")))
    event = Event.objects.get()
    event.name = "purchased"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        Event.objects.update(name="purchased")
    assert Event.objects.get().name == "item_viewed"


def test_clock_skew_is_corrected_against_server_time(client):
    skewed = int(time.time() * 1000) - 3_600_000  # client clock one hour slow
    payload = batch(view("1", ts=skewed))
    payload["sent_at"] = skewed
    post(client, payload)
    e = Event.objects.get()
    assert abs((e.occurred_at - e.received_at).total_seconds()) < 5
    assert abs((e.received_at - e.client_time).total_seconds() - 3600) < 5


def test_properties_round_trip_exactly(client):
    props = {"q": 'say "hi" \\ {braces}, commas', "ünï": "日本語 🎬", "nested": {"a": [1, 2.5, None, True]}, "empty": ""}
    post(client, batch(view("1", props=props), {"id": str(uuid.uuid4()), "name": "page_viewed", "ts": None}))
    assert Event.objects.get(name="item_viewed").properties == props
    page = Event.objects.get(name="page_viewed")
    assert page.client_time is None and page.item_id == "" and page.properties == {}
