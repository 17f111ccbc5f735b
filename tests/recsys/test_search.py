"""Semantic search: full-text and pgvector fused by reciprocal rank, re-ranked by interests."""
from __future__ import annotations

import pytest
from django.test import Client

from recsys.services import search
from recsys.services.interests import visitor_state
from recsys.strategies.base import RequestContext
from recsys.strategies.search import HybridSearch
from recsys.tokens import make_token

from .engine_helpers import Timeline, isolated_cache, run_projections  # noqa: F401
from .strategy_contract import StrategyContract

pytestmark = pytest.mark.django_db(transaction=True)


def ids(cands):
    return [c.item_id for c in cands]


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank_per_list():
    fused = search.rrf([[("a", 9.0), ("b", 5.0)], [("b", 0.9), ("c", 0.8)]], k=60)
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})


def test_lexical_matches_any_word_with_stemming_and_weights_titles_first(embedded_catalogue, isolated_cache):
    found = ids_of = [i for i, _ in search.lexical("space adventure aliens", 10)]
    assert found[:2] in (["6", "7"], ["7", "6"])  # "aliens" stems to the titles Alien and Aliens
    assert "9" in ids_of  # Star Wars: its Adventure category matches one word of three
    assert search.lexical("the of and", 10) == []  # stop words only: nothing, and no error


def test_vector_search_finds_meaning_without_shared_words(embedded_catalogue, isolated_cache):
    found = [i for i, _ in search.vector("cartoon for kids", 4)]
    assert set(found) <= {"1", "2", "3", "4", "5"}, found


def test_hybrid_puts_the_alien_films_first_with_the_search_as_reason(embedded_catalogue, isolated_cache):
    top = search.search("space adventure aliens", 5)
    assert set(ids(top[:2])) == {"6", "7"}, ids(top)
    reason = top[0].reasons[0]
    assert reason.text == "Matches your search \u201cspace adventure aliens\u201d"
    assert reason.evidence == [{"kind": "query", "query": "space adventure aliens"}]
    with pytest.raises(ValueError, match="lexical"):
        search.search("x", 3, mode="fuzzy")


def test_a_visitors_interests_re_rank_and_say_so(embedded_catalogue, isolated_cache):
    from recsys.services import labels

    labels.mine_keyphrases()
    log = Timeline()
    for item in ("1", "2", "3"):  # Toy Story, Aladdin, The Lion King
        log.record("kid", "item_viewed", item)
    run_projections()
    state = visitor_state("kid")
    query = "musical war story"
    plain = ids(search.search(query, 12))
    personal = search.search(query, 12, state=state, personal_weight=0.5)
    assert plain != ids(personal)
    kids = {"1", "2", "3", "4", "5"}
    assert sum(i in kids for i in ids(personal)[:4]) > sum(i in kids for i in plain[:4])
    risen = [c for c in personal if len(c.reasons) > 1]
    assert risen and all(c.reasons[1].kind == "interest" and c.reasons[1].text.startswith("For your interest in ")
                         for c in risen)


class TestHybridSearch(StrategyContract):
    strategy_cls = HybridSearch
    config_override = {"personal_weight": 0.0}

    @pytest.fixture
    def ctx(self, embedded_catalogue, isolated_cache):
        return RequestContext(visitor_id="", query="science fiction")

    def test_nothing_without_a_query(self):
        assert self.strategy().candidates(RequestContext(visitor_id="v"), 5) == []


def test_the_search_endpoint_answers_json_and_refuses_bad_input(embedded_catalogue, isolated_cache):
    client = Client()
    body = client.get("/liverec/search/", {"q": "space adventure aliens", "k": 3}).json()
    assert body["query"] == "space adventure aliens" and len(body["items"]) == 3
    assert {body["items"][0]["title"], body["items"][1]["title"]} == {"Alien (1995)", "Aliens (1995)"}
    assert body["items"][0]["reasons"][0]["kind"] == "search"
    personal = client.get("/liverec/search/", {"q": "aliens"}, headers={"X-LiveRec-Token": make_token("someone")})
    assert personal.status_code == 200
    assert client.get("/liverec/search/", {"q": "aliens", "token": make_token("someone")}).status_code == 400
    assert client.get("/liverec/search/", {"q": "  "}).status_code == 400
    assert "q must be" in client.get("/liverec/search/").json()["error"]
    assert client.get("/liverec/search/", {"q": "x", "k": "500"}).status_code == 400
    assert client.get("/liverec/search/", {"q": "x"}, headers={"X-LiveRec-Token": "forged"}).status_code == 403


NOT_ABOUT_SPACE = {"1", "5", "11"}  # Toy Story, Cinderella, Casablanca


def test_a_weak_match_is_no_result_so_the_list_is_shorter_than_asked(embedded_catalogue, isolated_cache):
    found = search.search("space adventure aliens", 12)
    assert {"6", "7", "9"} <= set(ids(found)), ids(found)  # Alien, Aliens, Star Wars
    assert not NOT_ABOUT_SPACE & set(ids(found)), ids(found)
    assert len(found) < 12
    everything = search.search("space adventure aliens", 12, min_similarity=-1.0)
    assert len(everything) == 12  # the floor, not the catalogue's size, shortened the list


def test_the_search_slot_and_endpoint_are_not_filled_with_non_matches(embedded_catalogue, isolated_cache):
    body = Client().get("/liverec/search/", {"q": "space adventure aliens", "k": 12}).json()
    titles = [it["title"] for it in body["items"]]
    assert 3 <= len(titles) < 12, titles
    assert not {"Toy Story (1995)", "Cinderella (1995)", "Casablanca (1995)"} & set(titles), titles
    assert all(it["reasons"][0]["kind"] == "search" for it in body["items"])


def test_for_you_says_matches_your_search_only_of_items_that_match(embedded_catalogue, isolated_cache):
    from recsys.engine import recommend

    recs = recommend("newcomer", "for-you", 8, {"query": "space adventure aliens"})
    assert len(recs.items) == 8  # the widget is still full
    search_reason = "Matches your search \u201cspace adventure aliens\u201d"
    matched = {r.item_id for r in recs.items if r.reasons[0].text == search_reason}
    assert matched and not matched & NOT_ABOUT_SPACE, [(r.title, r.reasons[0].text) for r in recs.items]
