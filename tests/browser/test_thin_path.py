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
    # The refreshed list arrives over the socket: sci-fi films, with reasons.
    page.wait_for_function(
        """() => [...document.querySelectorAll('liverec-widget[slot="for-you"] .liverec-item')]
                 .some(li => /Aliens|Terminator|Star Wars|Blade Runner/.test(li.textContent))""",
        timeout=20000)
    assert navigations == []  # no reload happened
    visitor = page.evaluate("window.liverec.visitorId()")
    # The tracker posts its batch on its own schedule; the list above may come from the page's context.
    wait_for(lambda: Event.objects.filter(visitor_id=visitor, name="item_viewed", item_id="6").exists(),
             timeout=30, what="the view stored in the event log")
    profile = VisitorProfile.objects.get(visitor_id=visitor)
    assert profile.long_term is not None
    reasons = widget.locator(".liverec-reason").all_text_contents()
    assert any(r.strip() for r in reasons)
