"""Never an empty widget: the fallback chain fills short lists, each item with a true reason."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recsys import fallback
from recsys.engine import recommend
from recsys.models import Item, ItemPopularity

from .engine_helpers import Timeline, isolated_cache, make_items, run_projections  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_catalogue_date(monkeypatch):
    monkeypatch.setattr(fallback, "_first", (0.0, None))


def texts(recs):
    return [r.reasons[0].text for r in recs.items]


def test_a_fresh_install_with_zero_events_fills_the_first_visitors_list_from_the_catalogue(isolated_cache):
    make_items(*[f"i{n}" for n in range(12)])
    recs = recommend("first-visitor", "for-you", 8)
    assert len(recs.items) == 8
    # All items came with the install: none of them is "new", they are the catalogue.
    assert set(texts(recs)) == {"From our catalogue"}
    assert all([(ev["kind"], ev["new"]) for ev in r.reasons[0].evidence] == [("catalogue", False)] for r in recs.items)


def test_trending_then_all_time_popular_then_newest_each_with_its_reason(isolated_cache):
    make_items("old0", "old1", "hot", "classic")
    Item.objects.update(created_at=timezone.now() - timedelta(days=90))
    make_items("fresh")  # added to a catalogue three months old: really new
    log = Timeline(timezone.now() - timedelta(hours=1))
    log.record("someone", "item_viewed", "hot")
    run_projections()
    hot = ItemPopularity.objects.get(item_id="hot")
    # Popular two months ago, outside trending's window (the log refuses events that old, so
    # the projection's row is written as its fold would have left it).
    ItemPopularity.objects.create(item_id="classic", log_key=hot.log_key - 1.0, updated=hot.updated - timedelta(days=60))
    recs = recommend("newcomer", "for-you", 4)
    got = {r.item_id: r.reasons[0].text for r in recs.items}
    assert list(got)[:3] == ["hot", "classic", "fresh"]
    assert got["hot"] == "Popular right now"
    assert got["classic"] == "Popular on this site"
    assert got["fresh"] == "New this week"
    assert list(got.values())[3] == "From our catalogue"


def test_the_fallback_respects_exclusions_availability_and_category_filters(isolated_cache):
    make_items("c0", "c1", "c2", categories=["Comedy"])
    make_items("d0", "d1", categories=["Drama"])
    Item.objects.filter(item_id="c2").update(available=False)
    log = Timeline()
    log.record("me", "purchased", "c0")
    run_projections()
    recs = recommend("me", "for-you", 8, {"category": "Comedy"})
    assert [r.item_id for r in recs.items] == ["c1"]


def test_reason_templates_are_settable_per_site_and_language(isolated_cache, settings):
    make_items("a", "b")
    settings.LIVEREC = {**settings.LIVEREC, "REASONS": {"LANGUAGE": "zh", "TEMPLATES": {"zh": {"catalogue": "目录精选"}}}}
    recs = recommend("v", "for-you", 2)
    assert texts(recs) == ["目录精选", "目录精选"]
    settings.LIVEREC = {**settings.LIVEREC, "REASONS": {"LANGUAGE": "zh", "TEMPLATES": {}}}
    assert texts(recommend("v", "for-you", 2)) == ["来自我们的目录"] * 2
