"""The live widget in headless Chromium on the demo site, on the real stack (uvicorn, Celery, Redis)."""
from __future__ import annotations

import time

import pytest

from recsys.models import Item, RecommendationLog
from tests.stack import wait_for
from tracking.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _idle_after(realtime_worker_idle_after):
    yield

ANIMATION = {"Toy Story", "Aladdin", "The Lion King", "Pinocchio", "Cinderella"}
WIDGET = 'liverec-widget[slot="for-you"]'
TOP_TITLES = f"""() => [...document.querySelectorAll('{WIDGET} .liverec-item .liverec-link')]
                       .map(a => a.textContent.replace(/ \\(\\d{{4}}\\)$/, ''))"""


def live(page):
    page.wait_for_function(f"document.querySelector('{WIDGET}').hasAttribute('live')", timeout=15000)


def wait_rows(query, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(query())
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError("no rows in time")


def test_three_films_of_a_genre_turn_for_you_toward_it_in_both_tabs_without_reload(stack, embedded_catalogue,
                                                                                      browser_context):
    films_tab = browser_context.new_page()
    films_tab.goto(f"{stack.url}/?genre=Animation")
    other_tab = browser_context.new_page()  # same profile: same visitor, a second tab
    other_tab.goto(f"{stack.url}/?genre=Drama")
    for tab in (films_tab, other_tab):
        live(tab)
    other_tab.locator("input[type=search]").focus()
    before = films_tab.evaluate(TOP_TITLES)
    navigations = []
    for tab in (films_tab, other_tab):
        tab.on("framenavigated", lambda frame: navigations.append(frame.url) if frame.parent_frame is None else None)

    # Ctrl+click: each film opens in a background tab, the genre page itself stays put.
    for item_id in ("1", "2", "3"):  # Toy Story, Aladdin, The Lion King
        films_tab.locator(f'main a[data-liverec-item="{item_id}"]').click(modifiers=["Control"])

    toward_genre = f"""() => {{ const t = ({TOP_TITLES})().slice(0, 3);
                               return t.filter(x => {sorted(ANIMATION)!r}.includes(x)).length >= 2; }}"""
    for tab in (films_tab, other_tab):
        tab.wait_for_function(toward_genre, timeout=20000)
    assert sum(t in ANIMATION for t in before[:3]) < 2, before
    assert navigations == []  # neither tab reloaded or navigated
    assert films_tab.evaluate(TOP_TITLES) != before
    # The change was announced politely, and the keyboard focus stayed where the visitor left it.
    status = other_tab.locator(f"{WIDGET} .liverec-status")
    assert status.get_attribute("aria-live") == "polite" and status.get_attribute("role") == "status"
    assert status.text_content().startswith("Recommendations updated: ")
    assert other_tab.evaluate("document.activeElement.matches('input[type=search]')")
    visitor = films_tab.evaluate("window.liverec.visitorId()")
    # Two folded clicks can already turn the list: the tracker may still hold the third in its
    # batch (it flushes on a timer), so wait for all three to be stored.
    wait_for(lambda: Event.objects.filter(visitor_id=visitor, name="item_clicked",
                                          item_id__in=["1", "2", "3"]).count() == 3, timeout=20,
             what="the three clicks in the log")
    # Every item shows its reason.
    reasons = films_tab.locator(f"{WIDGET} .liverec-item .liverec-reason").all_text_contents()
    assert reasons and all(r.strip() for r in reasons)


def test_item_titles_are_shown_as_text_and_never_run(stack, embedded_catalogue, film_factory, browser_context):
    from recsys.services import items

    payload = '<img src=x onerror="window.__xss=1">Alien Nation'
    film_factory(payload, ["Sci-Fi", "Horror", "Thriller"], ml_id=13)
    items.embed_items(list(Item.objects.filter(item_id="13").values_list("pk", flat=True)))
    page = browser_context.new_page()
    page.goto(f"{stack.url}/films/6/")  # Alien: the refreshed list is pushed and rendered by the script
    live(page)
    has_payload = f"""() => [...document.querySelectorAll('{WIDGET} .liverec-link')]
                           .some(a => a.textContent.startsWith('<img src=x onerror='))"""
    page.wait_for_function(has_payload, timeout=20000)
    assert int(page.locator(WIDGET).get_attribute("data-updates") or 0) >= 1  # rendered client-side
    assert page.evaluate("window.__xss") is None
    assert page.locator(f"{WIDGET} img").count() == 0
    page.reload()  # and the server-rendered list
    page.wait_for_function(has_payload, timeout=20000)
    assert page.evaluate("window.__xss") is None and page.locator(f"{WIDGET} img").count() == 0


def test_blocked_websockets_fall_back_to_polling(stack, embedded_catalogue, browser_context):
    page = browser_context.new_page()

    def closed_port(route):  # the socket URL points at a closed port, as if a proxy blocked WebSockets
        response = route.fetch()
        body = response.text().replace("<liverec-widget ", '<liverec-widget ws-url="ws://127.0.0.1:9/liverec/ws/" '
                                                           'poll-interval="500" ')
        route.fulfill(response=response, body=body)

    page.route(f"{stack.url}/", closed_port)
    page.goto(f"{stack.url}/")
    page.wait_for_function(f"document.querySelector('{WIDGET}').hasAttribute('polling')", timeout=15000)
    page.evaluate("window.liverec.track('item_viewed', {item_id: '6'}); window.liverec.flush()")  # Alien
    page.wait_for_function(f"""() => ({TOP_TITLES})().slice(0, 3)
                                  .filter(t => ['Aliens', 'The Terminator', 'Star Wars', 'Blade Runner'].includes(t))
                                  .length >= 2""", timeout=20000)
    assert not page.locator(WIDGET).evaluate("w => w.hasAttribute('live')")
    visitor = page.evaluate("window.liverec.visitorId()")
    assert RecommendationLog.objects.filter(visitor_id=visitor, channel="poll").exists()


def test_impressions_and_clicks_carry_the_recommendation_id_slot_and_position(stack, embedded_catalogue,
                                                                               browser_context):
    page = browser_context.new_page()
    page.goto(f"{stack.url}/films/6/")
    live(page)
    page.wait_for_function(f"+document.querySelector('{WIDGET}').dataset.updates >= 1", timeout=20000)
    visitor = page.evaluate("window.liverec.visitorId()")
    rec_id = page.locator(WIDGET).get_attribute("data-rec-id")
    items = page.locator(f"{WIDGET} [data-liverec-rec-item]").evaluate_all(
        "els => els.map(e => e.dataset.liverecRecItem)")
    shown = wait_rows(lambda: Event.objects.filter(visitor_id=visitor, name="recommendation_shown",
                                                   properties__rec_id=rec_id))
    assert shown[0].properties["slot"] == "for-you" and shown[0].properties["items"] == items
    page.locator(f"{WIDGET} .liverec-item").nth(1).locator("a").click()
    page.wait_for_url(f"**/films/{items[1]}/")
    clicked = wait_rows(lambda: Event.objects.filter(visitor_id=visitor, name="recommendation_clicked"))
    assert len(clicked) == 1  # once: the tracker does not count it again as a plain item click
    assert clicked[0].item_id == items[1]
    props = clicked[0].properties
    assert {k: props.get(k) for k in ("rec_id", "slot", "position")} == {"rec_id": rec_id, "slot": "for-you", "position": 2}
    log = RecommendationLog.objects.get(rec_id=rec_id)
    assert log.items[1] == items[1] and log.strategies[items[1]]


def test_a_forged_token_cannot_join_another_visitors_group(stack, embedded_catalogue, browser_context):
    page = browser_context.new_page()
    page.goto(f"{stack.url}/")
    live(page)
    mine = page.locator(WIDGET).get_attribute("token")
    # The attacker has a token of their own and changes it (tokens carry no readable id to swap).
    forged = mine[:30] + ("A" if mine[30] != "A" else "B") + mine[31:]
    result = page.evaluate("""([url, token]) => new Promise(resolve => {
        const ws = new WebSocket(url), got = [];
        ws.onopen = () => ws.send(JSON.stringify({type: "auth", token: token}));
        ws.onmessage = e => got.push(e.data);
        ws.onclose = e => resolve({code: e.code, messages: got});
    })""", [f"ws://127.0.0.1:{stack.port}/liverec/ws/?slots=for-you", forged])
    assert result == {"code": 4401, "messages": []}
