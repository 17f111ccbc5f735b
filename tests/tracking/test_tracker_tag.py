"""The one script tag a site needs carries the tracker's configuration."""
from __future__ import annotations

from django.template import Context, Template
from django.test import RequestFactory


def render(**ctx) -> str:
    request = RequestFactory().get("/")
    return Template("{% load liverec_tracking %}{% liverec_tracker item_id=item %}").render(Context({"request": request, **ctx}))


def test_the_tag_points_at_the_endpoint_with_the_site_key_and_item():
    html = render(item="42")
    assert 'src="/static/tracking/liverec.js"' in html and 'data-endpoint="/liverec/events/"' in html
    assert 'data-site-key="demo-site-key"' in html and 'data-item="42"' in html
    assert 'data-flush-ms="1000"' in html and 'data-flush-size="20"' in html
    assert 'data-consent=""' in html


def test_consent_required_is_passed_to_the_tracker(settings):
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "CONSENT_REQUIRED": True}
    assert 'data-consent="required"' in render(item="")
