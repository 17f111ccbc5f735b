"""Readable interests: keyphrase labels on interest centroids and catalogue topics."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from recsys import keyphrases as kp
from recsys.models import CatalogueTopic, Item, Keyphrase, VisitorProfile, VisitorTopics
from recsys.services import interests, labels
from tracking.services import record_event

ANIMATED = ["1", "2", "3", "4", "5"]
SCIFI = ["6", "7", "8", "9", "10"]


@pytest.fixture(autouse=True)
def projection_driven_by_the_test(monkeypatch):
    """These tests drive the projection themselves (apply_new_events/catch_up): the
    session's live workers, if started, must not fold the same events concurrently
    (nor hold locks while the test database is flushed)."""
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])


def test_mining_keeps_the_taxonomy_and_frequent_ngrams_only():
    docs = [("The Lion King (1994)", ["Animation", "Children's"]), ("Lion King II", ["Animation"]),
            ("Return of the Lion King", ["Animation", "Children's"]), ("Alien", ["Sci-Fi"])]
    mined = dict(kp.mine(docs, min_doc_freq=3))
    assert {"animation", "children's", "sci fi", "lion king", "lion"} <= mined.keys()
    assert mined["lion king"] == 3 and mined["animation"] == 3
    assert "the lion" not in mined and "alien" not in mined and "1994" not in mined
    assert "animation children's" not in mined  # that pair is on only 2 items


def test_keywords_of_a_visitor_who_only_watched_animated_films_name_animation(embedded_catalogue):
    assert labels.mine_keyphrases() == Keyphrase.objects.count() > 10
    start = timezone.now() - timedelta(hours=1)
    for n, item in enumerate(ANIMATED):
        record_event("item_viewed", visitor_id="vis-cartoons", item_id=item, occurred_at=start + timedelta(minutes=n))
    interests.catch_up()
    profile = VisitorProfile.objects.get(visitor_id="vis-cartoons")
    assert len(profile.interests) == 1
    label = profile.interests[0]["label"]
    assert "animation" in label, label
    words = [p for p, _ in labels.keywords(interests.load_state(profile).interests[0].vector, top=3)]
    assert len(set(words)) == len(words) >= 1 and words[0] in label  # distinct facets (MMR), stored as the label
    assert not any(w in label for w in ("sci fi", "thriller", "crime", "war"))


def test_catalogue_topics_and_a_visitors_share_of_them(embedded_catalogue):
    start = timezone.now() - timedelta(hours=1)
    for n, item in enumerate(ANIMATED * 2 + SCIFI[:1]):
        record_event("item_viewed", visitor_id="vis-topics", item_id=item, occurred_at=start + timedelta(minutes=n))
    interests.catch_up()
    call_command("recsys_topics", "-k", "3", stdout=__import__("io").StringIO())
    assert CatalogueTopic.objects.count() == 3
    assert sum(CatalogueTopic.objects.values_list("size", flat=True)) == 12
    toy_story = np.asarray(Item.objects.get(item_id="1").embedding)
    cartoon_topic = max(CatalogueTopic.objects.all(), key=lambda t: np.asarray(t.centroid) @ toy_story)
    assert "animation" in cartoon_topic.label and cartoon_topic.size >= 4
    dist = VisitorTopics.objects.get(visitor_id="vis-topics").distribution
    assert sum(dist.values()) == pytest.approx(1.0, abs=0.02)
    assert max(dist, key=dist.get) == str(cartoon_topic.number) and dist[str(cartoon_topic.number)] > 0.6
