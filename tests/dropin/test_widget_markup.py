"""One item template for both paths: a list the server renders ({% liverec_widget %}) and the
same list pushed to widget.js are the same markup, and the default stylesheet and the empty and
loading states show in Chromium."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import RequestFactory

from recsys.engine import Recommendation, RecommendationList
from recsys.strategies.base import Reason
from recsys.templatetags.liverec import render_widget

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://shop.test"
pytestmark = pytest.mark.browser

RECS = RecommendationList(id="rec-1", slot="for-you", visitor_id="v", items=[
    Recommendation("p1", "Burr Coffee Grinder", "/products/p1/", 0.9,
                   [Reason("content/interests", "Matches your interests")]),
    Recommendation("p2", "Trail <Running> Shoes & \"Socks\"", "/products/p2/", 0.8,
                   [Reason("similar/items", "Because you viewed Tent"), Reason("popular/trending", "Popular now"),
                    Reason("content/query", "Matches your search 'camp'")]),
    Recommendation("p3", "Ergonomic Mouse", "", 0.7, []),
    Recommendation("p4", "", "javascript:alert(1)", 0.6, [Reason("popular/trending", "Popular on this site")]),
])


def widget_html(recs: RecommendationList, title: str = "For you") -> str:
    """What {% liverec_widget %} renders for ``recs`` (the tag's own rendering function)."""
    return render_widget(RequestFactory().get("/"), recs, slot=recs.slot, limit=8, token="t", title=title)


def page_html(*widgets: str) -> str:
    # The socket points at a closed port: these widgets only render what the test gives them.
    body = "".join(w.replace("<liverec-widget ", '<liverec-widget ws-url="ws://127.0.0.1:9/liverec/ws/" ', 1)
                   for w in widgets)
    return (f'<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/static/recsys/widget.css">'
            f'<script src="/static/recsys/widget.js" defer></script></head>'
            f'<body style="font-family:sans-serif;max-width:760px;margin:1rem auto">{body}</body></html>')


def serve(page, html: str) -> None:
    static = ROOT / "recsys" / "static"

    def handler(route):
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path.startswith("/static/"):
            target = static / path[len("/static/"):]
            kind = "text/css" if target.suffix == ".css" else "text/javascript"
            return route.fulfill(status=200, body=target.read_bytes(), content_type=kind)
        if path == "/":
            return route.fulfill(status=200, body=html, content_type="text/html; charset=utf-8")
        return route.fulfill(status=404, body="")

    page.route(f"{ORIGIN}/**", handler)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("() => customElements.get('liverec-widget')")


ITEMS = """sel => [...document.querySelectorAll(sel + ' .liverec-list > li')].map(li => li.outerHTML)"""


def test_a_pushed_list_is_marked_up_exactly_as_the_server_renders_it(browser_context, shots):
    empty = RecommendationList(id="rec-0", slot="trending", visitor_id="v", items=[])
    page = browser_context.new_page()
    serve(page, page_html(widget_html(RECS), widget_html(empty, title="Trending")))
    server_items = page.evaluate(ITEMS, 'liverec-widget[slot="for-you"]')
    assert len(server_items) == 4
    # The same list, as a push delivers it (the JSON of RecommendationList.as_dict), into the empty widget.
    page.evaluate("recs => document.querySelector('liverec-widget[slot=\"trending\"]').render(recs)",
                  json.loads(json.dumps(RECS.as_dict())))
    pushed_items = page.evaluate(ITEMS, 'liverec-widget[slot="trending"]')
    assert pushed_items == server_items
    # Title and reason are separate lines on screen, not run together.
    link, reason = page.locator('liverec-widget[slot="trending"] .liverec-item').first.locator(
        ".liverec-link, .liverec-reason").all()
    assert link.bounding_box()["y"] < reason.bounding_box()["y"]
    assert page.get_attribute('liverec-widget[slot="trending"]', "data-state") == "ready"
    assert page.locator('liverec-widget[slot="trending"] .liverec-empty').is_hidden()
    page.screenshot(path=str(shots / "widget_markup.png"), full_page=True)


def test_an_empty_list_shows_loading_then_its_empty_state(browser_context):
    empty = RecommendationList(id="rec-0", slot="for-you", visitor_id="v", items=[])
    page = browser_context.new_page()
    serve(page, page_html(widget_html(empty)))
    widget = page.locator("liverec-widget")
    assert widget.get_attribute("data-state") == "loading"
    assert page.locator(".liverec-loading").is_visible() and page.locator(".liverec-empty").is_hidden()
    page.wait_for_function("() => document.querySelector('liverec-widget').dataset.state === 'empty'", timeout=10000)
    assert page.locator(".liverec-empty").is_visible()
    assert page.locator(".liverec-empty").inner_text() == "No recommendations yet."
    assert page.locator(".liverec-loading").is_hidden()


def test_a_site_restyles_the_widget_through_custom_properties(browser_context):
    page = browser_context.new_page()
    serve(page, page_html(widget_html(RECS)).replace(
        "</head>", "<style>liverec-widget { --liverec-accent: rgb(181, 48, 42); }</style></head>"))
    color = page.locator(".liverec-link").first.evaluate("a => getComputedStyle(a).color")
    assert color == "rgb(181, 48, 42)"
