"""A reason is true: content/interests says "For your interest in ..." only of items close to
that interest (``min_similarity``), on the real encoder and PostgreSQL."""
from __future__ import annotations

import pytest

from recsys.engine import recommend
from recsys.services.interests import visitor_state
from recsys.strategies.base import RequestContext
from recsys.reasons import INTEREST_MIN_SIMILARITY
from recsys.strategies.content import InterestVectors

from .engine_helpers import Timeline, isolated_cache, run_projections  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

CHILDRENS = {"1", "2", "3", "4", "5"}  # Toy Story, Aladdin, The Lion King, Pinocchio, Cinderella


@pytest.fixture
def sci_fi_viewer(embedded_catalogue, isolated_cache):
    from recsys.services import labels

    labels.mine_keyphrases()
    log = Timeline()
    for item in ("6", "7", "8"):  # Alien, Aliens, The Terminator
        log.record("fan", "item_viewed", item)
    run_projections()
    return "fan"


def test_interest_reasons_go_only_to_items_near_the_interest(sci_fi_viewer):
    state = visitor_state(sci_fi_viewer)
    cands = InterestVectors().candidates(RequestContext(visitor_id=sci_fi_viewer, state=state,
                                                        exclude={"6", "7", "8"}), 12)
    reasoned = {c.item_id for c in cands if c.reasons}
    assert {"9", "10"} <= reasoned, [(c.item_id, c.reasons) for c in cands]  # Star Wars, Blade Runner
    assert not reasoned & CHILDRENS, [(c.item_id, [r.text for r in c.reasons]) for c in cands]
    assert {c.item_id for c in cands} & CHILDRENS  # they still score: only the claim is withheld
    everyone = InterestVectors({"min_similarity": -1.0}).candidates(
        RequestContext(visitor_id=sci_fi_viewer, state=state, exclude={"6", "7", "8"}), 12)
    assert all(c.reasons for c in everyone)
    assert 0.0 < INTEREST_MIN_SIMILARITY < 1.0


def test_after_three_sci_fi_views_childrens_films_do_not_read_as_for_that_interest(sci_fi_viewer):
    recs = recommend(sci_fi_viewer, "for-you", 12, {})
    for rec in recs.items:
        assert rec.reasons, rec
        if rec.item_id in CHILDRENS:
            assert all(r.kind not in ("interest", "browsing") for r in rec.reasons), (rec.title, rec.reasons)
    assert any(r.kind == "interest" for rec in recs.items for r in rec.reasons if rec.item_id in {"9", "10"})


def test_the_query_floor_is_the_searchs_floor():
    from recsys.services.search import MIN_SIMILARITY

    assert InterestVectors.DEFAULT_CONFIG["query_min_similarity"] == MIN_SIMILARITY


def test_a_slot_may_say_its_short_list_stays_short(db):
    from django.core.exceptions import ValidationError

    from recsys.services.publishing import validate_slot_config

    assert validate_slot_config({"strategies": {"search/hybrid": 1.0}, "fill": False})["fill"] is False
    with pytest.raises(ValidationError, match="fill"):
        validate_slot_config({"strategies": {"search/hybrid": 1.0}, "fill": "no"})
