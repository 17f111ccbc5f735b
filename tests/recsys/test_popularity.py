"""The item popularity projection behind popular/trending, on the real database.

The projection (forward-decayed keys, folded with the associations) must rank and score
items exactly as the aggregate over the log it replaced, and a replay must rebuild it.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recsys.models import ItemPopularity
from recsys.services import cooccurrence
from recsys.strategies import trending
from tests.recsys.engine_helpers import isolated_cache, make_items  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def record(visitor, name, item, at, **props):
    from tracking.services import record_event

    record_event(name, visitor_id=visitor, item_id=item, properties=props, occurred_at=at)


@pytest.fixture
def history(isolated_cache):  # noqa: F811
    make_items("p1", "p2", "p3", "p4", categories=["Drama"])
    make_items("p5", categories=["Comedy"])
    now = timezone.now()
    script = [("a", "item_viewed", "p1", 70), ("b", "item_viewed", "p1", 50), ("a", "purchased", "p2", 40),
              ("c", "item_viewed", "p3", 30), ("c", "added_to_cart", "p3", 29), ("d", "rated", "p4", 20),
              ("d", "item_viewed", "p5", 10), ("e", "item_viewed", "p2", 5), ("e", "item_viewed", "p4", 1)]
    for visitor, name, item, hours_ago in script:
        record(f"pop-{visitor}", name, item, now - timedelta(hours=hours_ago), **({"value": 4} if name == "rated" else {}))
    import uuid

    from tracking.services import append_events

    # A bot's views never count, however many. (Not the newest event: the aggregate decays to
    # the newest event of any kind, the projection to the newest engagement it holds.)
    at = (now - timedelta(hours=2)).isoformat()
    append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": "p5", "ts": at}
                   for _ in range(5)], visitor_id="pop-bot", is_bot=True)
    cooccurrence.catch_up()


def test_the_projection_ranks_and_scores_as_the_log_aggregate(history):
    half_life = 72.0
    scanned = trending._scan(half_life, 30, 100, "")
    projected = trending._from_projection(30, 100, "")
    assert [i for i, _ in projected] == [i for i, _ in scanned]
    for (_, s1), (_, s2) in zip(projected, scanned):
        assert s1 == pytest.approx(s2, rel=1e-6)
    # Per category too (a join on the catalogue).
    assert [i for i, _ in trending._from_projection(30, 100, "Comedy")] == ["p5"]
    assert [i for i, _ in trending._from_projection(30, 100, "Drama")] == [i for i, _ in trending._scan(half_life, 30, 100, "Drama")]


def test_a_replay_rebuilds_the_same_projection(history):
    before = {p.item_id: p.log_key for p in ItemPopularity.objects.all()}
    cooccurrence.rebuild()
    after = {p.item_id: p.log_key for p in ItemPopularity.objects.all()}
    assert before.keys() == after.keys() == {"p1", "p2", "p3", "p4", "p5"}
    for item, key in before.items():
        assert after[item] == pytest.approx(key, abs=1e-9)


def test_a_tuned_half_life_falls_back_to_the_cached_aggregate(history):
    projected = trending.trending_scores(72.0, 30, 10)
    tuned = trending.trending_scores(2.0, 30, 10)  # a 2 h half-life: the newest engagements lead
    assert tuned == trending._scan(2.0, 30, trending.FETCH, "")[:10]
    assert tuned[0][0] == "p4" and projected[0][0] != tuned[0][0]
