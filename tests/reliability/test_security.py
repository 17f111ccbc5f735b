"""Nobody let in: signed expiring tokens, secrets from the environment, item text as text."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from django.core import signing

from recsys.tokens import make_token
from tests.stack import ROOT
from tracking import identity

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
    from django.template.loader import render_to_string

    recs = {"id": "r1", "items": [{"item_id": "1", "title": HOSTILE_TITLE, "url": "/films/1/",
                                   "reasons": [{"text": "Because you watched " + HOSTILE_TITLE}]}]}
    html = render_to_string("liverec/widget.html", {"slot": "for-you", "limit": 8, "recs": recs, "token": "t"})
    assert html.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") == 2
    assert "<script>window.pwned" not in html and "<img src=x" not in html
