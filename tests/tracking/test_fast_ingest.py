"""The lean ASGI ingest route (tracking.asgi) in front of the demo's Django ASGI app.

Driven in-process through the real ASGI application (demo.asgi) and the real database:
the view runs on the route's own thread pool, so the tests are transactional.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from tests.visitors import cookie_header
from tracking import identity
from tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/liverec/events/"


def app():
    from demo.asgi import application

    return application


def view(item="1"):
    return {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item, "ts": int(time.time() * 1000)}


def call(method: str, path: str, body: bytes = b"", headers=(), chunks: list[bytes] | None = None) -> dict:
    """One request through the ASGI app; returns status, headers (lower-cased) and body."""
    async def run():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), *headers],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
        comm = ApplicationCommunicator(app(), scope)
        parts = chunks if chunks is not None else [body]
        for i, part in enumerate(parts):
            await comm.send_input({"type": "http.request", "body": part, "more_body": i < len(parts) - 1})
        start = await comm.receive_output(30)
        content = b""
        while True:
            msg = await comm.receive_output(30)
            content += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        return {"status": start["status"], "headers": [(k.decode().lower(), v.decode()) for k, v in start["headers"]],
                "body": content}

    return async_to_sync(run)()


def post_json(payload, headers=()):
    """POST as the browser of ``payload["visitor_id"]`` (its signed cookie, beside any cookie given)."""
    body = json.dumps(payload).encode()
    cookie = [v.decode() for k, v in headers if k == b"cookie"]
    if "visitor_id" in payload:
        cookie.append(cookie_header(payload["visitor_id"]))
    headers = [(k, v) for k, v in headers if k != b"cookie"] + ([(b"cookie", "; ".join(cookie).encode())] if cookie else [])
    return call("POST", URL, body, [(b"content-type", b"application/json"), *headers])


def test_a_batch_is_stored_with_per_event_outcomes_and_a_content_length():
    good, bad = view("7"), {"id": "nope", "name": "item_viewed", "item_id": "8"}
    resp = post_json({"site_key": "demo-site-key", "visitor_id": "visitor-fast01", "events": [good, bad]})

    assert resp["status"] == 200
    data = json.loads(resp["body"])
    assert (data["accepted"], data["rejected"]) == (1, 1) and data["events"][1]["reason"] == "id must be a UUID"
    assert ("content-length", str(len(resp["body"]))) in resp["headers"]
    stored = Event.objects.get()
    assert (str(stored.uuid), stored.visitor_id, stored.item_id) == (good["id"], "visitor-fast01", "7")


def test_a_logged_in_visitors_events_carry_their_user_id():
    user = get_user_model().objects.create_user("fastuser", password="pw-fast-ingest")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    resp = post_json({"site_key": "demo-site-key", "visitor_id": "visitor-fast02", "events": [view("3")]},
                     [(b"cookie", cookie)])

    assert resp["status"] == 200
    assert Event.objects.get().user_id == str(user.pk)


def test_without_a_visitor_id_the_cookie_id_is_issued_as_django_would():
    resp = post_json({"site_key": "demo-site-key", "events": [view("4")]})

    assert resp["status"] == 200
    cookies = [v for k, v in resp["headers"] if k == "set-cookie"]
    assert len(cookies) == 1 and cookies[0].startswith("lr_vid=")
    assert Event.objects.get().visitor_id == identity.unsign(cookies[0].split(";")[0].split("=", 1)[1])


def test_bad_input_gets_the_same_clear_errors():
    malformed = call("POST", URL, b"{not json", [(b"content-type", b"application/json")])
    assert malformed["status"] == 400 and "malformed JSON" in json.loads(malformed["body"])["error"]
    # A body streamed in many chunks past the limit: refused, and not buffered past the limit.
    huge = call("POST", URL, chunks=[b"x" * 65536] * 40, headers=[(b"content-type", b"application/json")])
    assert huge["status"] == 413
    foreign = call("OPTIONS", URL, headers=[(b"origin", b"https://evil.example")])
    assert foreign["status"] == 403
    preflight = call("OPTIONS", URL, headers=[(b"origin", b"http://127.0.0.1:8000")])
    assert preflight["status"] == 204
    assert ("access-control-allow-origin", "http://127.0.0.1:8000") in preflight["headers"]
    assert Event.objects.count() == 0


def test_every_other_request_goes_through_django():
    assert call("GET", URL)["status"] == 405  # the same view, through the full stack
    assert call("GET", "/liverec/no-such-page/")["status"] == 404
