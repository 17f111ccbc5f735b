"""A browser that forges the visitor cookie gets an id of its own, never the victim's list."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from recsys.models import RecommendationLog
from recsys.tokens import read_token
from tests.stack import wait_for
from tracking import identity, services

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

WIDGET = 'liverec-widget[slot="for-you"]'


@pytest.fixture(autouse=True)
def _idle_after(realtime_worker_idle_after):
    yield


@pytest.mark.parametrize("forgery", ["the victim's raw id", "the victim's id with a made-up signature"])
def test_a_forged_visitor_cookie_does_not_read_another_visitors_list(stack, embedded_catalogue, browser_context,
                                                                    tmp_path, forgery):
    victim = identity.new_visitor_id()
    for item in ("1", "2", "3"):  # the victim has a history, so a list of their own
        services.append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item}], visitor_id=victim)
    value = victim if forgery == "the victim's raw id" else f"{victim}:{identity.sign(victim).split(':')[1][::-1]}"
    browser_context.add_cookies([{"name": "lr_vid", "value": value, "url": stack.url}])

    page = browser_context.new_page()
    urls = []  # every URL the page opens: the token travels in a header or a socket message only
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    page.goto(f"{stack.url}/")
    page.wait_for_function(f"document.querySelector('{WIDGET}').hasAttribute('live')", timeout=15000)
    shot = Path(os.environ.get("LIVEREC_SCREENSHOT_DIR") or tmp_path) / "forged-cookie.png"
    page.screenshot(path=str(shot), full_page=True)

    issued = page.evaluate("liverec.visitorId()")
    cookie = next(c["value"] for c in browser_context.cookies() if c["name"] == "lr_vid")
    assert issued and issued != victim and identity.unsign(cookie) == issued
    token = page.locator(WIDGET).get_attribute("token")
    assert read_token(token) == issued and victim not in token
    # The page's list, and the list the page's token reads, are the fresh visitor's.
    fetched = page.evaluate("""token => fetch('/liverec/recs/for-you/', {headers: {'X-LiveRec-Token': token}})
                                         .then(r => r.json())""", token)
    rows = wait_for(lambda: list(RecommendationLog.objects.filter(rec_id=fetched["id"])), what="the served list logged")
    assert {r.visitor_id for r in rows} == {issued}
    assert not RecommendationLog.objects.filter(visitor_id=victim).exists()
    assert any("/liverec/ws/" in u for u in urls) and not [u for u in urls if "token" in u or token in u], urls
