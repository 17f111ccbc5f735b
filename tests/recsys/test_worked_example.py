"""The seed's worked example, run through the real projections and engine."""
from __future__ import annotations

import pytest
from django.test import override_settings

from recsys.conf import DEFAULTS
from recsys.engine import recommend

from .engine_helpers import Timeline, isolated_cache, make_items, run_projections  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

# The default for-you slot, with rules that exclude only purchases.
SLOTS = {**DEFAULTS["SLOTS"], "for-you": {**DEFAULTS["SLOTS"]["for-you"], "exclude_events": {"purchased": None}}}


@override_settings(LIVEREC={"SLOTS": SLOTS})
def test_first_recommendation_is_c_for_visitor_1_and_d_for_visitor_2(isolated_cache):
    """Visitor 1 viewed A, B, C, D and bought B; visitor 2 viewed B, C, D and bought C.

    Why C, then D: the co-occurrence projection pairs each engagement with the same
    visitor's earlier items, counting the order they went in (a -> b when b came after a,
    nearer steps more, a purchase after views more than a view). Both visitors went on
    from B to C (B -> C is the strongest pair), and both went on from C to D.
    Each visitor's seeds are their items weighted by engagement and recency: the purchase
    they just made is the strongest seed. Visitor 1 just bought B, and after B people went
    to C; visitor 2 just bought C, and after C people went to D. Trending (weight 0.2)
    favours B and C, but not enough to overturn the sequence signal; the items have no
    embeddings, so the content strategies stay silent and the result is the collaborative one.
    """
    make_items("A", "B", "C", "D")
    log = Timeline()
    for item in "ABCD":
        log.record("visitor-1", "item_viewed", item)
    log.record("visitor-1", "purchased", "B")
    for item in "BCD":
        log.record("visitor-2", "item_viewed", item)
    log.record("visitor-2", "purchased", "C")
    run_projections()

    first = recommend("visitor-1", "for-you").items
    second = recommend("visitor-2", "for-you").items

    assert [r.item_id for r in first][:1] == ["C"]
    assert [r.item_id for r in second][:1] == ["D"]
    assert "B" not in [r.item_id for r in first] and "C" not in [r.item_id for r in second]
    top1, top2 = first[0].reasons[0], second[0].reasons[0]
    assert (top1.strategy, top1.text, top1.item_id) == ("collaborative/co-occurrence", "Because you bought Item B", "B")
    assert (top2.strategy, top2.text, top2.item_id) == ("collaborative/co-occurrence", "Because you bought Item C", "C")
    assert all(r.reasons for r in first + second)
