"""The end-to-end proof, in a real browser on the real stack:
a film page view is posted by the tracker, stored, folded into the visitor's
pgvector interest by a Celery worker, and the "For you" widget re-renders live."""
from __future__ import annotations

import pytest

from devstack.stack import wait_for

from recsys.models import VisitorProfile
from tracking.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def test_viewing_a_film_updates_the_for_you_widget_without_reload(stack, embedded_catalogue, browser_context):
    page = browser_context.new_page()
    page.goto(f"{stack.url}/films/6/")  # Alien
    widget = page.locator('liverec-widget[slot="for-you"]')
    widget.wait_for()
    page.wait_for_function("document.querySelector('liverec-widget[slot=\"for-you\"]').hasAttribute('live')", timeout=15000)
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    # The server rendered a list for the page (a first visitor: the fallback's); the refreshed one
    # must come over the socket once the view is stored and folded.
    rendered = page.eval_on_selector('liverec-widget[slot="for-you"] .liverec-list', "ol => ol.getAttribute('data-liverec-rec')")
    visitor = page.evaluate("window.liverec.visitorId()")
    wait_for(lambda: Event.objects.filter(visitor_id=visitor, name="item_viewed", item_id="6").exists(),
             timeout=30, what="the view stored in the event log")
    wait_for(lambda: VisitorProfile.objects.filter(visitor_id=visitor).exists(), timeout=30, what="the view folded")
    profile = VisitorProfile.objects.get(visitor_id=visitor)
    assert profile.long_term is not None
    page.wait_for_function(
        """(rendered) => { const ol = document.querySelector('liverec-widget[slot="for-you"] .liverec-list');
                           return ol.getAttribute('data-liverec-rec') !== rendered
                                  && /Aliens|Terminator|Star Wars|Blade Runner/.test(ol.textContent); }""",
        arg=rendered, timeout=20000)
    assert navigations == []  # no reload happened
    reasons = widget.locator(".liverec-reason").all_text_contents()
    assert any(r.strip() for r in reasons)
