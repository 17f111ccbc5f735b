"""The tracker in headless Chromium against the real stack (uvicorn + PostgreSQL):
autocapture lands in the log, an outage loses nothing and stores each event exactly
once, and without consent nothing leaves the browser."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest

from devstack.stack import wait_for

from tracking.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

EVENTS = "**/liverec/events/"


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    return wait_for(predicate, timeout, 0.2, what)


@pytest.fixture
def films(film_factory):
    return [film_factory("Alien", ["Horror", "Sci-Fi"], ml_id=1), film_factory("Aliens", ["Action", "Sci-Fi"], ml_id=2)]


def names(visitor: str) -> Counter:
    """Event names the visitor's actions logged (the widgets' own impression events aside)."""
    return Counter(Event.objects.filter(visitor_id=visitor).exclude(name__startswith="recommendation_")
                   .values_list("name", flat=True))


def test_autocaptured_events_land_in_the_log(stack, films, browser_context):
    page = browser_context.new_page()
    page.goto(f"{stack.url}/films/1/")
    page.wait_for_function("window.liverec")
    visitor = page.evaluate("liverec.visitorId()")
    page.click("button[data-liverec-event=added_to_cart]")
    page.fill("form[data-liverec-search] input[name=q]", "alien")
    with page.expect_navigation():
        page.click("form[data-liverec-search] button")
    with page.expect_navigation():
        page.click("a[data-liverec-item='2']")
    page.wait_for_function("window.liverec")
    wanted = {"page_viewed": 3, "item_viewed": 2, "added_to_cart": 1, "searched": 1, "item_clicked": 1}
    wait_until(lambda: all(names(visitor)[k] >= n for k, n in wanted.items()), what=f"{wanted} in the log")
    log = Event.objects.filter(visitor_id=visitor).exclude(name__startswith="recommendation_")
    assert dict(names(visitor)) == wanted  # nothing twice
    assert log.get(name="added_to_cart").item_id == "1"
    assert log.get(name="searched").properties["query"] == "alien"
    assert log.get(name="item_clicked").item_id == "2"
    assert sorted(log.filter(name="item_viewed").values_list("item_id", flat=True)) == ["1", "2"]
    clicked = log.get(name="item_clicked")
    assert clicked.properties["url"].startswith(f"{stack.url}/?q=alien")
    assert clicked.properties["referrer"] == f"{stack.url}/films/1/"
    assert all(e.client_time and e.session_id == clicked.session_id and not e.is_bot for e in log)


def test_events_made_while_the_endpoint_is_down_arrive_once_it_is_back_exactly_once(stack, films, browser_context):
    page = browser_context.new_page()
    page.route(EVENTS, lambda route: route.abort())
    page.goto(f"{stack.url}/films/1/")
    page.wait_for_function("window.liverec")
    visitor = page.evaluate("liverec.visitorId()")
    page.click("button[data-liverec-event=added_to_cart]")
    page.evaluate("liverec.track('trailer_played', {seconds: 12})")
    page.wait_for_timeout(1500)  # at least one failed flush
    queued = page.evaluate("JSON.parse(localStorage.getItem('lr_queue'))"
                           ".filter(e => !e.name.startsWith('recommendation_')).map(e => e.id)")
    assert len(queued) == 4 and not Event.objects.filter(visitor_id=visitor).exists()

    # The server comes back, but the first answer is lost on the way: the server stored the
    # batch, the tracker saw a failure and sends the same events again.
    lost = {"n": 0}

    def lose_first_answer(route):
        if lost["n"] == 0:
            lost["n"] += 1
            route.fetch()  # reaches the server and is stored
            route.abort()  # ... but the browser never hears back
        else:
            route.continue_()

    page.unroute(EVENTS)
    page.route(EVENTS, lose_first_answer)
    page.wait_for_function("liverec.queued() === 0", timeout=40000)
    assert lost["n"] == 1
    stored = Counter(str(u) for u in Event.objects.filter(visitor_id=visitor).exclude(name__startswith="recommendation_")
                     .values_list("uuid", flat=True))
    assert set(stored) == set(queued) and set(stored.values()) == {1}
    assert names(visitor)["trailer_played"] == 1


def test_with_consent_false_nothing_is_sent_and_the_queue_is_purged(stack, films, browser_context):
    page = browser_context.new_page()
    page.route(EVENTS, lambda route: route.abort())
    page.goto(f"{stack.url}/films/1/")
    page.wait_for_function("liverec.queued() > 0")
    visitor = page.evaluate("liverec.visitorId()")
    page.evaluate("liverec.consent(false)")
    assert page.evaluate("liverec.queued()") == 0
    page.unroute(EVENTS)
    sent = []
    page.on("request", lambda req: sent.append(req.url) if "/liverec/events/" in req.url else None)
    page.click("button[data-liverec-event=added_to_cart]")
    assert page.evaluate("liverec.track('trailer_played', {})") is None
    page.reload()
    page.wait_for_function("window.liverec")
    page.wait_for_timeout(2500)  # more than two flush intervals
    assert sent == [] and page.evaluate("liverec.queued()") == 0
    assert not Event.objects.filter(visitor_id=visitor).exists()


def test_global_privacy_control_means_no_tracking_until_the_visitor_opts_in(stack, films, browser_context):
    page = browser_context.new_page()
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    sent = []
    page.on("request", lambda req: sent.append(req.url) if "/liverec/events/" in req.url else None)
    page.goto(f"{stack.url}/films/1/")
    page.wait_for_function("window.liverec")
    visitor = page.evaluate("liverec.visitorId()")
    page.wait_for_timeout(1500)
    assert sent == [] and page.evaluate("liverec.queued()") == 0
    page.evaluate("liverec.consent(true)")
    marker = page.evaluate("liverec.track('newsletter_opened', {})")
    assert uuid.UUID(marker)
    wait_until(lambda: Event.objects.filter(uuid=marker, visitor_id=visitor).exists(), what="the opted-in event")
    assert names(visitor) == Counter({"newsletter_opened": 1})
