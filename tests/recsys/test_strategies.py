"""Each built-in strategy against the strategy contract, on real data in PostgreSQL."""
from __future__ import annotations

import pytest

from recsys import selectors
from recsys.services.interests import visitor_state
from recsys.strategies.base import RequestContext
from recsys.strategies.collaborative import CoOccurrence
from recsys.strategies.content import InterestVectors, SimilarItems
from recsys.strategies.context import QueryMatch
from recsys.strategies.trending import Trending, TrendingInCategory

from .engine_helpers import Timeline, isolated_cache, make_items, run_projections  # noqa: F401
from .strategy_contract import StrategyContract

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop_log(isolated_cache):
    """Twelve comedy/drama items and sessions of five visitors through them."""
    make_items(*[f"c{i}" for i in range(6)], categories=["Comedy"])
    make_items(*[f"d{i}" for i in range(6)], categories=["Drama"])
    log = Timeline()
    for v, seq in enumerate([["c0", "c1", "c2", "d0"], ["c1", "c2", "c3"], ["c0", "c2", "c4", "c5"],
                             ["d0", "d1", "c1", "d2"], ["c3", "c4", "d3"]]):
        for item in seq:
            log.record(f"shopper-{v}", "item_viewed", item)
    log.record("shopper-0", "added_to_cart", "c2")
    run_projections()
    return log


class TestInterestVectors(StrategyContract):
    strategy_cls = InterestVectors
    config_override = {"per_interest": 20}

    @pytest.fixture
    def ctx(self, embedded_catalogue, isolated_cache):
        log = Timeline()
        for item in ("6", "7", "1"):  # Alien, Aliens, Toy Story
            log.record("fan", "item_viewed", item)
        run_projections()
        return RequestContext(visitor_id="fan", state=visitor_state("fan"))

    def test_both_tastes_are_served(self, ctx):
        ctx.exclude = {"6", "7", "1"}
        top = self.strategy().candidates(ctx, 6)
        ids = {c.item_id for c in top}
        assert ids & {"8", "9", "10"} and ids & {"2", "3", "4", "5"}, top


def test_each_scan_of_a_batch_keeps_its_own_exclusions(embedded_catalogue, isolated_cache):
    """``nearest_items_for`` sends each exclusion set once for the scans that share it: every
    scan still gives what it gives alone, and never an item its own set excludes."""
    from recsys.models import Item
    from recsys.strategies.content import nearest_items, nearest_items_for

    vec = {i: v for i, v in Item.objects.values_list("item_id", "embedding")}
    horror, kids = {"6", "7"}, {"1", "2", "3"}
    queries = [(vec["6"], horror), (vec["1"], horror), (vec["1"], kids), (vec["8"], set()), (vec["6"], kids)]
    together = nearest_items_for(queries, 5)
    for (v, excluded), found in zip(queries, together):
        assert found == nearest_items(v, 5, excluded) and len(found) == 5
        assert not {item_id for item_id, _ in found} & excluded
    assert together[0] != together[4]  # the same vector under another set


class TestSimilarItems(StrategyContract):
    strategy_cls = SimilarItems
    config_override = {"unused": 1}

    @pytest.fixture
    def ctx(self, embedded_catalogue, isolated_cache):
        return RequestContext(visitor_id="anyone", item_id="6")

    def test_more_like_this_names_the_page_item(self, ctx):
        top = self.strategy().candidates(ctx, 3)
        assert {c.item_id for c in top} <= {"7", "8", "9", "10"}
        assert top[0].reasons[0].text == "Similar to Alien (1995)"


class TestQueryMatch(StrategyContract):
    strategy_cls = QueryMatch
    config_override = {"min_similarity": -1.0}

    @pytest.fixture
    def ctx(self, embedded_catalogue, isolated_cache):
        return RequestContext(visitor_id="searcher", query="animated musical for children")

    def test_a_cold_searcher_gets_what_they_searched_for(self, ctx):
        top = self.strategy().candidates(ctx, 3)
        assert {c.item_id for c in top} <= {"1", "2", "3", "4", "5"}, top
        assert top[0].reasons[0].text.startswith("Matches your search")


class TestTrending(StrategyContract):
    strategy_cls = Trending
    config_override = {"half_life_hours": 12.0}

    @pytest.fixture
    def ctx(self, shop_log):
        return RequestContext(visitor_id="newcomer")

    def test_the_most_engaged_item_leads_and_category_tuning_restricts(self, ctx):
        assert self.strategy().candidates(ctx, 1)[0].item_id == "c2"  # 3 views and a cart
        drama = self.strategy(category="Drama").candidates(ctx, 10)
        assert drama and all(c.item_id.startswith("d") for c in drama)
        assert drama[0].reasons[0].text == "Popular in Drama right now"


class TestTrendingInCategory(StrategyContract):
    strategy_cls = TrendingInCategory
    config_override = {"max_categories": 1}

    @pytest.fixture
    def ctx(self, shop_log):
        return RequestContext(visitor_id="newcomer", category="Comedy")

    def test_categories_follow_the_page_item_when_no_category_is_given(self, ctx):
        out = self.strategy().candidates(RequestContext(visitor_id="x", item_id="d1"), 10)
        assert out and all(c.item_id.startswith("d") for c in out)
        assert out[0].reasons[0].text == "Popular in Drama"


class TestCoOccurrence(StrategyContract):
    strategy_cls = CoOccurrence
    config_override = {"max_seeds": 5}

    @pytest.fixture
    def ctx(self, shop_log):
        shop_log.record("returning", "item_viewed", "c1")
        shop_log.record("returning", "item_viewed", "c0")
        run_projections()
        return RequestContext(visitor_id="returning", engagements=selectors.recent_engagements("returning"))

    def test_what_followed_the_visitors_items_ranks_first_with_the_earlier_item_named(self, ctx):
        top = self.strategy().candidates(ctx, 5)
        # c2 followed both c0 and c1 in three sessions (and went to a cart).
        assert top[0].item_id == "c2"
        assert top[0].reasons[0].item_id in {"c0", "c1"}
        assert top[0].reasons[0].text in {"Because you viewed Item c0", "Because you viewed Item c1"}

    def test_seeds_read_recently_come_from_the_process_cache(self, ctx, monkeypatch):
        """A second ranking reads only the seeds the first did not (recsys.neighbours) and
        ranks the same; a fold in this process shows its new pairs at once; with
        NEIGHBOUR_CACHE_SECONDS = 0 every ranking reads every seed."""
        from django.test import override_settings

        from recsys import neighbours

        reads = []
        real = selectors.association_keys_read
        monkeypatch.setattr(selectors, "association_keys_read",
                            lambda ids, per: reads.append(list(ids)) or real(ids, per))
        first = self.strategy().candidates(ctx, 5)
        assert sorted(reads[0]) == ["c0", "c1"]
        again = self.strategy().candidates(ctx, 5)
        assert len(reads) == 1 and again == first
        cold = self.strategy().candidates(RequestContext(visitor_id="cold", item_id="d0"), 5)
        assert reads[1] == ["d0"] and cold

        # c1 -> d5 forms in a fold run here: the cache is dropped, the pair ranks at once.
        ctx.engagements = selectors.recent_engagements("returning")
        for _ in range(3):
            for item in ("c1", "d5"):
                Timeline().record(f"later-{_}", "item_viewed", item)
        run_projections()
        after = self.strategy().candidates(ctx, 5)
        assert len(reads) == 3 and "d5" in {c.item_id for c in after}

        with override_settings(LIVEREC={"NEIGHBOUR_CACHE_SECONDS": 0}):
            neighbours.forget_all()
            self.strategy().candidates(ctx, 5)
            self.strategy().candidates(ctx, 5)
        assert len(reads) == 5

    def test_the_page_item_seeds_people_also_viewed(self, ctx):
        out = self.strategy().candidates(RequestContext(visitor_id="cold", item_id="d0"), 5)
        assert out and out[0].reasons[0].text.startswith("Often viewed with")
        assert "d1" in {c.item_id for c in out} or "c1" in {c.item_id for c in out}
