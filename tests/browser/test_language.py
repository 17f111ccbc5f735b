"""Language in the widget, on the demo in headless Chromium on the real stack: a first visitor's
full list, reasons that name their evidence with a "Why?" trail, and the semantic search box."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.stack import wait_for
from tracking.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

WIDGET = 'liverec-widget[slot="for-you"]'
NOT_SCI_FI = {"Toy Story", "Aladdin", "The Lion King", "Pinocchio", "Cinderella", "Casablanca"}
SHOTS = Path(__file__).resolve().parent.parent.parent / ".stack" / "screenshots"


@pytest.fixture(autouse=True)
def _idle_after(realtime_worker_idle_after):
    yield


@pytest.fixture
def labelled_catalogue(embedded_catalogue):
    """The demo's small catalogue with its keyphrases mined (what ``demo_import`` does)."""
    from recsys.services import labels

    labels.mine_keyphrases()
    return embedded_catalogue


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_first_time_visitor_sees_a_full_list_at_once(stack, embedded_catalogue, browser_context):
    assert not Event.objects.exists()  # a fresh site: nothing has happened yet
    page = browser_context.new_page()
    page.goto(f"{stack.url}/")
    # A behavioural bound, not a measurement: the list is there within a second of the page.
    page.wait_for_function(f"document.querySelectorAll('{WIDGET} .liverec-item').length === 8", timeout=1000)
    reasons = page.locator(f"{WIDGET} .liverec-item .liverec-reason").all_text_contents()
    assert len(reasons) == 8 and set(reasons) == {"From our catalogue"}, reasons
    shot(page, "first-visitor")


def _named(evidence: dict) -> bool:
    return bool(evidence.get("title") or evidence.get("query") or evidence.get("label") or evidence.get("scope")
                or evidence.get("kind") == "catalogue")


def test_after_three_views_every_for_you_reason_names_its_evidence_and_why_shows_the_trail(
        stack, labelled_catalogue, browser_context):
    page = browser_context.new_page()
    for ml_id in ("6", "7", "8"):  # Alien, Aliens, The Terminator: three views through the tracker
        page.goto(f"{stack.url}/films/{ml_id}/")
        page.evaluate("window.liverec.flush()")
    visitor = page.evaluate("window.liverec.visitorId()")
    wait_for(lambda: Event.objects.filter(visitor_id=visitor, name="item_viewed").count() >= 3, timeout=20,
             what="three views in the log")
    page.goto(f"{stack.url}/?genre=Drama")
    token = page.locator(WIDGET).get_attribute("token")

    def recs():
        return page.evaluate("t => fetch('/liverec/recs/for-you/?k=8', {headers: {'X-LiveRec-Token': t}})"
                             ".then(r => r.json())", token)

    # The folds behind the three views land within seconds: wait until a reason names one of them.
    wait_for(lambda: any(ev.get("title") for it in recs()["items"] for r in it["reasons"] for ev in r["evidence"]),
             timeout=30, what="a reason naming an earlier item")
    body = recs()
    assert len(body["items"]) == 8
    for item in body["items"]:
        for reason in item["reasons"]:
            assert reason["text"] and reason["kind"], reason
            assert "interest" not in reason  # no bare interest index reaches the page
            assert any(_named(ev) for ev in reason["evidence"]), json.dumps(reason)
    texts = [r["text"] for it in body["items"] for r in it["reasons"]]
    assert not any(t in ("Matches your interests", "Like what you are browsing now") for t in texts), texts
    # A reason is true: the children's films and Casablanca are not "for your interest" in sci-fi.
    for item in body["items"]:
        if item["title"].split(" (")[0] in NOT_SCI_FI:
            assert not any(r["kind"] in ("interest", "browsing") for r in item["reasons"]), json.dumps(item)
    assert any(t.startswith("Because you viewed ") or t.startswith("For your interest in ") or t.startswith("Like ")
               for t in texts), texts

    page.reload()
    why = page.locator(f"{WIDGET} details.liverec-why").first
    why.locator("summary").click()
    trail = why.locator(".liverec-trail li").all_text_contents()
    assert trail and any(t.startswith("You viewed ") for t in trail), trail
    assert any(" \u00b7 " in t and ("ago" in t or t.endswith("now")) for t in trail), trail  # "· 2 minutes ago", "· now"
    shot(page, "reasons-why-trail")


def test_the_demo_search_box_finds_the_alien_films_for_space_adventure_aliens(stack, embedded_catalogue,
                                                                               browser_context):
    page = browser_context.new_page()
    page.goto(f"{stack.url}/")
    page.locator("input[type=search]").fill("space adventure aliens")
    page.locator("form.search button").click()
    page.wait_for_selector("ol.results li a", timeout=10000)
    titles = page.locator("ol.results li a").all_text_contents()
    assert {t.replace(" (1995)", "") for t in titles[:2]} == {"Alien", "Aliens"}, titles
    # A weak match is no result: the films the search does not describe are not listed.
    assert 3 <= len(titles) < 12, titles
    assert not {"Toy Story", "Cinderella", "Casablanca"} & {t.replace(" (1995)", "") for t in titles}, titles
    why = page.locator("ol.results li small.why").first.text_content()
    assert why == "Matches your search \u201cspace adventure aliens\u201d"
    # The for-you list beside it turns to the search too, and says so in words.
    page.wait_for_function(f"""() => {{
        const r = [...document.querySelectorAll('{WIDGET} .liverec-item .liverec-reason')].map(e => e.textContent);
        return r.length === 8 && r.some(t => t === 'Matches your search \u201cspace adventure aliens\u201d')
               && !r.some(t => t === 'Like what you are browsing now'); }}""", timeout=20000)
    # ... of the items that match it only.
    for item in page.locator(f"{WIDGET} .liverec-item").all():
        title = item.locator("a").first.text_content().split(" (")[0].strip()
        if title in NOT_SCI_FI:
            assert item.locator(".liverec-reason").first.text_content() != \
                "Matches your search \u201cspace adventure aliens\u201d", title
    shot(page, "search-space-adventure-aliens")
