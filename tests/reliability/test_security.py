"""Nobody let in: signed expiring tokens, secrets from the environment, item text as text."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from django.core import signing
from django.utils import timezone

from recsys.tokens import make_token, read_token
from devstack.stack import ROOT
from tracking import identity
from tracking.models import Event

HOSTILE_TITLE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def stale_token(visitor_id: str, age_seconds: int) -> str:
    return make_token(visitor_id, issued_at=int(time.time()) - age_seconds)


def _django_setup(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update({"DJANGO_SETTINGS_MODULE": "demo.settings", "PYTHONPATH": str(ROOT), **env_overrides})
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_secret_key_must_come_from_the_environment_when_debug_is_off():
    refused = _django_setup({"DEBUG": "0"})
    assert refused.returncode != 0 and "SECRET_KEY must be set in the environment" in refused.stderr
    ok = _django_setup({"DEBUG": "0", "SECRET_KEY": "from-the-environment-" + uuid.uuid4().hex})
    assert ok.returncode == 0 and ok.stdout.strip().startswith("from-the-environment-"), ok.stderr


@pytest.mark.django_db
def test_the_recommendations_endpoint_needs_a_valid_unexpired_token(client):
    url = "/liverec/recs/for-you/"
    good = make_token("visitor-sec-a")
    assert client.get(url, HTTP_X_LIVEREC_TOKEN=good).status_code == 200
    flipped = good[:40] + ("A" if good[40] != "A" else "B") + good[41:]
    cases = {
        "missing": "", "forged": "visitor-sec-a:abc:forged", "tampered": flipped,
        "the old signed-id format": signing.TimestampSigner(salt="liverec.visitor-token").sign("visitor-sec-a"),
        "expired": stale_token("visitor-sec-a", 2 * 24 * 3600),
    }
    for label, token in cases.items():
        resp = client.get(url, HTTP_X_LIVEREC_TOKEN=token)
        assert resp.status_code == 403, label
        assert resp.json()["error"] in ("bad token", "token expired"), label
    assert client.get(url, HTTP_X_LIVEREC_TOKEN=cases["expired"]).json()["error"] == "token expired"


@pytest.mark.django_db
def test_the_ingest_site_key_is_checked_in_header_and_body(client):
    body = {"visitor_id": "visitor-sec-key",
            "events": [{"id": str(uuid.uuid4()), "name": "page_viewed", "ts": int(time.time() * 1000)}]}
    client.cookies["lr_vid"] = identity.sign("visitor-sec-key")
    post = lambda **h: client.post("/liverec/events/", json.dumps(body), content_type="application/json", **h)  # noqa: E731
    assert post().status_code == 403
    assert post(HTTP_X_LIVEREC_KEY="wrong").status_code == 403
    assert post(HTTP_X_LIVEREC_KEY="demo-site-key").status_code == 200


def test_hostile_item_titles_render_as_text_in_the_server_rendered_widget():
    from recsys.templatetags.liverec import render_widget

    recs = {"id": "r1", "items": [{"item_id": "1", "title": HOSTILE_TITLE, "url": "/films/1/",
                                   "reasons": [{"text": "Because you viewed " + HOSTILE_TITLE}]}]}
    html = render_widget(None, recs, slot="for-you", limit=8, token="t")
    assert html.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") == 3  # the title, the reason, the "Why?" list
    assert "<script>window.pwned" not in html and "<img src=x" not in html


# --- Identity: the server issues visitor ids; tokens name nobody and stay out of URLs --------------

WIDGET_TOKEN = re.compile(r'<liverec-widget[^>]*\stoken="([^"]+)"')


@pytest.mark.django_db
def test_a_cookie_the_server_did_not_sign_is_replaced_never_adopted(client):
    victim = identity.new_visitor_id()
    for forged in (victim, identity.sign(victim)[:-1] + "x", f"{victim}:not-a-signature"):
        client.cookies.clear()
        client.cookies["lr_vid"] = forged
        resp = client.get("/")
        issued = identity.unsign(resp.cookies["lr_vid"].value)
        assert issued and issued != victim, forged
        token = WIDGET_TOKEN.search(resp.content.decode()).group(1)
        assert read_token(token) == issued  # the page's token reads the fresh visitor, not the victim
    # The server's own signed cookie is kept, and not re-issued.
    client.cookies.clear()
    client.cookies["lr_vid"] = identity.sign(victim)
    resp = client.get("/")
    assert "lr_vid" not in resp.cookies
    assert read_token(WIDGET_TOKEN.search(resp.content.decode()).group(1)) == victim


def test_tokens_carry_no_readable_visitor_id():
    import base64

    visitor = "visitor-readable-42"
    token = make_token(visitor)
    padded = token + "=" * (-len(token) % 4)
    assert visitor not in token and visitor.encode() not in base64.urlsafe_b64decode(padded)
    assert make_token(visitor) != token  # a fresh IV each time: equal tokens do not reveal equal visitors
    assert read_token(token) == visitor


@pytest.mark.django_db
def test_the_recommendations_endpoint_refuses_a_token_in_the_url(client):
    resp = client.get("/liverec/recs/for-you/", {"token": make_token("visitor-in-url")})
    assert resp.status_code == 400 and "X-LiveRec-Token header" in resp.json()["error"]


def _batch(visitor: str | None = None, **event) -> dict:
    body = {"site_key": "demo-site-key", "events": [{"id": str(uuid.uuid4()), "name": "page_viewed",
                                                     "ts": int(time.time() * 1000), **event}]}
    if visitor is not None:
        body["visitor_id"] = visitor
    return body


def _post(client, body, **headers):
    return client.post("/liverec/events/", json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_ingest_refuses_a_visitor_id_other_than_the_signed_cookies_without_the_server_key(client, settings):
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "SERVER_KEY": "s2s-secret-key"}
    mine, victim = identity.new_visitor_id(), "visitor-victim-ingest"
    # No cookie at all, or my own signed cookie: naming the victim is refused, nothing stored.
    refused = _post(client, _batch(victim))
    assert refused.status_code == 403 and "signed visitor cookie" in refused.json()["error"]
    client.cookies["lr_vid"] = identity.sign(mine)
    assert _post(client, _batch(victim)).status_code == 403
    assert _post(client, _batch(victim), HTTP_X_LIVEREC_SERVER_KEY="wrong").status_code == 403
    assert not Event.objects.filter(visitor_id=victim).exists()
    # The cookie's own visitor, named or not, is accepted; so is the victim with the server key.
    assert _post(client, _batch()).json()["accepted"] == 1
    assert _post(client, _batch(mine)).json()["accepted"] == 1
    assert _post(client, _batch(victim), HTTP_X_LIVEREC_SERVER_KEY="s2s-secret-key").json()["accepted"] == 1
    assert Event.objects.filter(visitor_id=mine).count() == 2 and Event.objects.filter(visitor_id=victim).count() == 1


@pytest.mark.django_db
def test_an_events_user_id_comes_only_from_the_signed_in_user(client, django_user_model):
    client.cookies["lr_vid"] = identity.sign(identity.new_visitor_id())
    anonymous = _post(client, _batch(user_id="someone-else")).json()
    assert anonymous["rejected"] == 1 and "signed-in user" in anonymous["events"][0]["reason"]
    user = django_user_model.objects.create_user("sec-user", password="pw-sec-user")
    client.force_login(user)
    assert _post(client, _batch(user_id="someone-else")).json()["rejected"] == 1
    assert _post(client, _batch(user_id=str(user.pk))).json()["accepted"] == 1
    assert _post(client, _batch()).json()["accepted"] == 1
    assert set(Event.objects.values_list("user_id", flat=True)) == {str(user.pk)}


# --- Disallowed Host on the fast ingest route ---------------------------------------------------------

@pytest.mark.django_db
def test_a_disallowed_host_on_the_fast_ingest_route_is_400_not_500(caplog):
    from tests.tracking.test_fast_ingest import call

    body = json.dumps(_batch()).encode()
    resp = call("POST", "/liverec/events/", body, [(b"content-type", b"application/json"), (b"host", b"evil.example"),
                                                   (b"origin", b"http://evil.example")])
    assert resp["status"] == 400 and "ALLOWED_HOSTS" in json.loads(resp["body"])["error"]
    assert "Traceback" not in caplog.text and not Event.objects.exists()


# --- Ids matched in full; safe download names ------------------------------------------------------

@pytest.mark.parametrize("value", ["x-nl\n", "item-7\n"])
def test_ids_ending_in_a_newline_are_refused(value):
    from tracking.validation import ValidationError, clean_id

    with pytest.raises(ValidationError):
        clean_id(value, "visitor_id", 64)


def test_custom_event_names_ending_in_a_newline_are_refused():
    from tracking.validation import ValidationError, clean_name

    assert clean_name("custom_event") == "custom_event"
    with pytest.raises(ValidationError):
        clean_name("custom_event\n")


@pytest.mark.django_db
def test_exporting_a_visitor_whose_stored_id_ends_in_a_newline_downloads_with_a_safe_name(client, django_user_model):
    from django.urls import reverse

    Event.objects.create(uuid=uuid.uuid4(), name="page_viewed", visitor_id="x-nl\n", session_id="s",
                         occurred_at=timezone.now(), received_at=timezone.now())
    client.force_login(django_user_model.objects.create_superuser("sec-boss", "b@example.com", "pw"))
    resp = client.post(reverse("admin:recsys_visitor_export", args=["x-nl\n"]))
    assert resp.status_code == 200
    assert resp["Content-Disposition"] == 'attachment; filename="visitor-x-nl_.json"'


# --- Per-IP limit behind proxies ---------------------------------------------------------------------

@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_dodge_the_ip_limit(client, settings):
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "CLIENT_IP_HEADER": "X-Forwarded-For",
                                 "RATE_LIMIT_IP": {"EVENTS": 3, "SECONDS": 60}, "RATE_LIMIT_VISITOR": None}
    client.cookies["lr_vid"] = identity.sign(identity.new_visitor_id())
    statuses = [_post(client, _batch(), REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
                for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # no proxy is trusted: the header is the client's word


def test_behind_trusted_proxies_the_client_is_the_rightmost_untrusted_address(rf, settings):
    from tracking.ratelimit import client_ip

    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "CLIENT_IP_HEADER": "X-Forwarded-For",
                                 "TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.1"]}
    chain = "1.1.1.1, 203.0.113.9, 10.1.2.3"  # spoofed, the real client, an inner proxy
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=chain)) == "203.0.113.9"
    # From an untrusted peer the header is ignored.
    assert client_ip(rf.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=chain)) == "198.51.100.1"


# --- The recommendations endpoint: rate limit, query embeddings cached -------------------------------

@pytest.mark.django_db
def test_the_recommendations_endpoint_is_rate_limited_per_visitor(client, settings):
    settings.LIVEREC = {**settings.LIVEREC, "RECS_RATE_LIMIT_VISITOR": {"REQUESTS": 3, "SECONDS": 60}}
    token = make_token("visitor-recs-limit")
    statuses = [client.get("/liverec/recs/for-you/", HTTP_X_LIVEREC_TOKEN=token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/liverec/recs/for-you/", HTTP_X_LIVEREC_TOKEN=token)
    assert 1 <= int(refused["Retry-After"]) <= 60 and "visitor rate limit of 3 requests" in refused.json()["error"]
    assert client.get("/liverec/recs/for-you/", HTTP_X_LIVEREC_TOKEN=make_token("visitor-other")).status_code == 200


@pytest.mark.django_db
def test_the_search_endpoint_is_rate_limited_per_address(client, settings):
    settings.LIVEREC = {**settings.LIVEREC, "RECS_RATE_LIMIT_IP": {"REQUESTS": 2, "SECONDS": 60}}
    statuses = [client.get("/liverec/search/", {"q": f"space adventure {n}"}).status_code for n in range(3)]
    assert statuses == [200, 200, 429]  # every new query is embedded: it counts like a recommendations request


def test_a_repeated_query_is_embedded_once_and_shared_through_the_cache():
    from unittest import mock

    import numpy as np

    from recsys.encoders import get_encoder
    from recsys.services import queries

    encoder = get_encoder()
    text = f"space   adventure {uuid.uuid4().hex[:6]}"
    queries.forget_cached()
    with mock.patch.object(type(encoder), "encode", autospec=True, side_effect=type(encoder).encode) as spy:
        first = queries.embed_query(text)
        again = queries.embed_query(" ".join(text.split()))  # the same text once normalised
        queries.forget_cached()  # another process: nothing in its LRU, the vector in the shared cache
        other = queries.embed_query(text)
    assert spy.call_count == 1
    assert np.array_equal(first, again) and np.array_equal(first, other) and first.dtype == np.float32
    assert np.allclose(first, encoder.encode([" ".join(text.split())])[0], atol=1e-6)


# --- Bot rate by arrival, not by the client's clock -------------------------------------------------

@pytest.mark.django_db
def test_events_spread_over_100_hours_of_client_time_but_sent_at_once_are_flagged(client):
    visitor = identity.new_visitor_id()
    client.cookies["lr_vid"] = identity.sign(visitor)
    now = int(time.time() * 1000)
    events = [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(i), "ts": now - (100 - i) * 3600_000}
              for i in range(100)]
    for start in range(0, 100, 50):
        assert _post(client, {"site_key": "demo-site-key", "events": events[start:start + 50]}).json()["accepted"] == 50
    assert Event.objects.filter(visitor_id=visitor, is_bot=True).count() >= 40  # past BOT_RATE's 60 in 10 s


# --- Insecure defaults -----------------------------------------------------------------------------

def _settings_probe(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update({"DJANGO_SETTINGS_MODULE": "demo.settings", "PYTHONPATH": str(ROOT), **env_overrides})
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_debug_is_off_unless_the_environment_turns_it_on():
    assert _settings_probe({"SECRET_KEY": "k-" + uuid.uuid4().hex}).stdout.strip() == "False"
    assert _settings_probe({"DEBUG": "1"}).stdout.strip() == "True"  # the demo's entry point sets it
    repo_key = _settings_probe({"DEBUG": "0", "SECRET_KEY": "liverec-demo-insecure-key-change-me"})
    assert repo_key.returncode != 0 and "a key of your own" in repo_key.stderr


def test_a_published_secret_key_with_debug_off_fails_the_system_checks(settings):
    from django.core.checks import run_checks

    settings.DEBUG = False
    for key in ("liverec-demo-insecure-key-change-me", "django-insecure-abc123"):
        settings.SECRET_KEY = key
        assert "tracking.E001" in {e.id for e in run_checks(tags=["security"])}, key
    settings.SECRET_KEY = "a-key-of-this-site-" + uuid.uuid4().hex
    assert "tracking.E001" not in {e.id for e in run_checks(tags=["security"])}
    settings.DEBUG = True
    settings.SECRET_KEY = "liverec-demo-insecure-key-change-me"
    assert "tracking.E001" not in {e.id for e in run_checks(tags=["security"])}
