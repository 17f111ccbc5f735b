"""The admin tuning UI in a real browser on the real stack: log in as staff, preview an edit of
the "for-you" slot side by side, publish it, then inspect a visitor. Screenshots are saved to
``$LIVEREC_SCREENSHOT_DIR`` (else the test's temp dir) for a human to look at."""
from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from recsys.models import AuditEntry, SlotConfig
from tracking.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def add_event(visitor, name, item_id="", minutes_ago=0.0, **props):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    Event.objects.create(uuid=uuid.uuid4(), name=name, visitor_id=visitor, item_id=str(item_id), properties=props,
                         occurred_at=at, received_at=at)


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("LIVEREC_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def clean_cache():
    """Committed events feed the trending lists the fallback path caches: drop them afterwards
    so the next test does not see these events' items. (Not cache.clear(): the cache shares its
    Redis database with the Celery broker.)"""
    from django.core.cache import cache

    yield
    client = cache._cache.get_client(None, write=True)  # Django's RedisCache: a redis.Redis
    for key in client.scan_iter(cache.make_key("liverec:trending:*")):
        client.delete(key)


@pytest.fixture
def staff_page(stack, browser_context, clean_cache):
    User.objects.create_superuser("boss", "boss@example.com", "correct horse")
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{stack.url}/admin/login/?next=/admin/recsys/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "correct horse")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/recsys/")
    return page


def test_tune_preview_and_publish_then_inspect_the_visitor(stack, embedded_catalogue, staff_page, shots):
    from recsys.services import cooccurrence, interests

    for item in ("6", "7", "8"):  # Alien, Aliens, The Terminator
        add_event("v-browser", "item_viewed", item, minutes_ago=30)
    for n in range(3):
        add_event(f"crowd{n}", "item_viewed", "11", minutes_ago=1)  # Casablanca trends
    interests.catch_up()
    cooccurrence.catch_up()  # and item popularity (trending): what the realtime task does
    page = staff_page
    assert page.locator("text=Dashboard").first.is_visible()  # the tools sit in the recsys section

    page.goto(f"{stack.url}/admin/recsys/slotconfig/slot/for-you/")
    page.fill("#id_visitor", "v-browser")
    page.click("#lr-preview-btn")
    page.wait_for_selector("#lr-edited li")
    live = page.locator("#lr-live").inner_text()
    interest_reasons = ("For your interest in", "which you just viewed", "Because you viewed")
    assert any(t in live for t in ("Star Wars", "Blade Runner")) and any(r in live for r in interest_reasons)
    # Edit: trending only. The preview follows the edit without a click (live preview).
    for name in page.eval_on_selector_all('input[name^="w:"]', "els => els.map(e => e.name)"):
        page.fill(f'input[name="{name}"]', "1" if name == "w:popular/trending" else "0")
    page.wait_for_function("""() => { const t = document.querySelector('#lr-edited').innerText;
                                      return t.includes('Casablanca') && !t.includes('For your interest in')
                                             && !t.includes('which you just viewed'); }""", timeout=15000)
    edited = page.locator("#lr-edited").inner_text()
    assert "Popular right now" in edited and not any(r in edited for r in interest_reasons)
    assert not SlotConfig.objects.exists()  # previewing published nothing
    page.screenshot(path=str(shots / "tuning-preview.png"), full_page=True)

    page.fill("#id_note", "trending only, from the browser test")
    page.click("input[value='Publish new version']")
    page.wait_for_selector("text=Published for-you v1")
    history = page.locator("#lr-history").inner_text()
    assert "v1" in history and "live" in history and "trending only, from the browser test" in history
    row = SlotConfig.objects.get(slot="for-you", version=1)
    assert row.created_by == "boss" and row.config["strategies"] == {"popular/trending": 1.0}
    assert AuditEntry.objects.filter(action="publish_slot", user="boss").exists()
    page.screenshot(path=str(shots / "tuning-published.png"), full_page=True)

    page.goto(f"{stack.url}/admin/recsys/visitorprofile/inspect/v-browser/")
    timeline = page.locator("#lr-timeline").inner_text()
    assert "Alien" in timeline and "Terminator" in timeline and timeline.count("item_viewed") == 3
    assert page.locator("#lr-interests tr").count() >= 2
    recs = page.locator("#lr-recs").inner_text()
    assert "Casablanca" in recs and "Popular right now" in recs  # the list under the published v1
    assert page.locator("#lr-export").is_visible() and page.locator("#lr-forget").is_visible()
    assert page.locator("svg.lr-chart").count() >= 2
    page.screenshot(path=str(shots / "visitor-inspector.png"), full_page=True)

    page.goto(f"{stack.url}/admin/recsys/dashboard/")
    assert page.locator("svg.lr-chart").first.is_visible()
    assert "liverec.realtime" in page.locator(".lr-cards").inner_text()
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)


def test_create_start_and_promote_an_experiment(stack, staff_page, shots):
    from recsys.models import Experiment
    from recsys.services import publishing

    publishing.publish_slot_config("trending", {"strategies": {"popular/trending": 1.0}, "limit": 4}, user="boss")
    publishing.publish_slot_config("trending", {"strategies": {"popular/trending": 1.0}, "limit": 8}, user="boss")
    page = staff_page
    page.goto(f"{stack.url}/admin/recsys/experiment/")
    page.fill("#id_name", "short trending list")
    page.select_option("#id_slot", "trending")
    page.fill('input[name="arm_name_0"]', "current")
    page.select_option('select[name="arm_source_0"]', "live")
    page.fill('input[name="arm_name_1"]', "short")
    page.select_option('select[name="arm_source_1"]', label="trending v1")
    page.click("input[value='Create (draft)']")
    page.wait_for_selector("text=Created experiment short trending list")
    page.click("input[value='Start']")
    page.wait_for_selector("#lr-status:has-text('running')")
    assert Experiment.objects.get().status == "running"
    page.screenshot(path=str(shots / "experiment-report.png"), full_page=True)
    page.click("input[value='Promote short']")
    page.wait_for_selector("text=Published the winner as trending v3")
    exp = Experiment.objects.get()
    assert exp.status == "stopped" and exp.winner == "short"
    assert SlotConfig.objects.get(slot="trending", version=3).config["limit"] == 4
