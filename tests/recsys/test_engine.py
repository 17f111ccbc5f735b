"""The engine end to end on PostgreSQL: rules, filters, context, reasons, config, surfaces."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recsys.conf import DEFAULTS
from recsys.engine import recommend
from recsys.models import Item, ItemAssociation, SlotConfig, StrategyConfig
from recsys.services import cooccurrence
from recsys.tokens import make_token

from .engine_helpers import Timeline, isolated_cache, make_items, run_projections  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def ids(recs):
    return [r.item_id for r in recs.items]


@pytest.fixture
def shop(isolated_cache):
    """Six comedies and six dramas; c0 is the most popular, then c1, ... (trending order)."""
    make_items(*[f"c{i}" for i in range(6)], categories=["Comedy"])
    make_items(*[f"d{i}" for i in range(6)], categories=["Drama"])
    log = Timeline(timezone.now() - timedelta(hours=3))
    for rank, item in enumerate(["c0", "c1", "d0", "c2", "d1", "c3", "d2", "c4", "d3", "c5", "d4", "d5"]):
        for v in range(12 - rank):
            log.record(f"crowd-{v}", "item_viewed", item)
    run_projections()
    return log


def publish(slot, config, version=1):
    return SlotConfig.objects.create(slot=slot, version=version, config=config)


def test_exclusion_windows_per_event_type(shop):
    shop.t = timezone.now() - timedelta(hours=2, minutes=30)
    shop.record("me", "purchased", "c0")  # bought long ago: excluded forever
    shop.record("me", "item_viewed", "c1")  # viewed 2.5 h ago: back after the 1 h window
    shop.t = timezone.now() - timedelta(minutes=10)
    shop.record("me", "item_viewed", "d0")  # viewed 10 min ago: excluded
    publish("trending", {"strategies": {"popular/trending": 1.0},
                         "exclude_events": {"purchased": None, "item_viewed": 3600}, "limit": 4})
    assert ids(recommend("me", "trending")) == ["c1", "c2", "d1", "c3"]


def test_filters_boost_bury_and_pin_from_a_published_slot(shop):
    publish("trending", {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 4,
                         "filters": {"categories": ["Comedy"]},
                         "rules": [{"action": "bury", "item_ids": ["c0"]},
                                   {"action": "boost", "item_ids": ["c4"], "factor": 3.0},
                                   {"action": "pin", "item_id": "c5", "position": 1},
                                   {"action": "pin", "item_id": "d5", "position": 0}]})  # d5 fails the filter
    Item.objects.filter(item_id="c2").update(available=False)
    recs = recommend("someone", "trending")
    assert ids(recs) == ["c4", "c5", "c1", "c3"]
    assert recs.items[1].reasons[0].text == "Featured"
    assert recs.items[0].reasons[0].strategy == "popular/trending"


def test_publishing_a_new_version_takes_effect_at_once_and_config_reads_are_cached(shop):
    publish("trending", {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 3})
    assert ids(recommend("x", "trending")) == ["c0", "c1", "d0"]
    with CaptureQueriesContext(connection) as ctx:
        recommend("x", "trending")
    config_reads = [q["sql"] for q in ctx.captured_queries if "slotconfig" in q["sql"] or "strategyconfig" in q["sql"]]
    assert config_reads == []
    publish("trending", {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 3,
                         "filters": {"categories": ["Drama"]}}, version=2)
    assert ids(recommend("x", "trending")) == ["d0", "d1", "d2"]
    StrategyConfig.objects.create(strategy_id="popular/trending", config={"category": "Comedy"})
    recs = recommend("x", "trending", 3)
    assert recs.items == [] or all(r.item_id.startswith("d") for r in recs.items)  # Comedy-only trending, Drama filter
    SlotConfig.objects.filter(version=2).update(active=False)  # a bulk update bypasses signals...
    SlotConfig.objects.get(version=1).save()  # ...any save invalidates
    recs = recommend("x", "trending", 3)
    assert ids(recs) == ["c0", "c1", "c2"] and recs.items[0].reasons[0].text == "Popular in Comedy right now"


def test_category_context_filters_and_drives_per_category_trending(shop):
    recs = recommend("x", "popular-in-category", 3, {"category": "Drama"})
    assert ids(recs) == ["d0", "d1", "d2"]
    assert recs.items[0].reasons[0].text == "Popular in Drama"
    assert all(i.startswith("d") for i in ids(recommend("x", "trending", 5, {"category": "Drama"})))


def test_an_unregistered_optional_strategy_is_skipped_and_for_you_serves_a_cold_visitor(shop):
    conf = {**DEFAULTS["SLOTS"]["for-you"], "if_registered": {"plugin/not-installed": 1.0}}
    recs = recommend("brand-new-visitor", "for-you", 4, config=conf)
    assert ids(recs) == ["c0", "c1", "d0", "c2"]
    assert all(r.reasons[0].text == "Popular right now" for r in recs.items)


def test_the_page_item_seeds_people_also_viewed_in_the_similar_slot(shop):
    log = Timeline()
    for v in range(3):
        log.record(f"pair-{v}", "item_viewed", "d5")
        log.record(f"pair-{v}", "item_viewed", "c5")
    run_projections()
    recs = recommend("someone-else", "similar", 3, {"item_id": "d5"})
    assert recs.items[0].item_id == "c5" and "d5" not in ids(recs)
    assert recs.items[0].reasons[0].text == "Often viewed with Item d5"


def test_cold_visitor_with_a_search_and_new_items_through_content_similarity(embedded_catalogue, film_factory,
                                                                            isolated_cache):
    from recsys.services import items

    recs = recommend("searcher", "for-you", 3, {"query": "space war science fiction"})
    assert recs.items and all(r.reasons[0].strategy == "content/query" for r in recs.items)
    assert set(ids(recs)) <= {"6", "7", "8", "9", "10"}

    log = Timeline(timezone.now() - timedelta(minutes=10))  # inside for-you's 1 h "viewed" exclusion
    for item in ("6", "7", "8"):
        log.record("scifi-fan", "item_viewed", item)
    run_projections()
    film = film_factory("Starship Troopers", ["Action", "Sci-Fi", "War"], year=1997, ml_id=99)
    items.embed_items([Item.objects.get(item_id="99").pk])  # what the batch worker does on save
    recs = recommend("scifi-fan", "for-you", 4)
    assert str(film.ml_id) in ids(recs), ids(recs)  # no event has touched it yet
    new = next(r for r in recs.items if r.item_id == "99")
    assert new.reasons[0].strategy == "content/interests"


def test_host_queryset_filters_through_the_adapter(film_factory, isolated_cache):
    old = film_factory("Old Film", ["Drama"], year=1950, ml_id=501)
    new = film_factory("New Film", ["Drama"], year=1999, ml_id=502)
    log = Timeline()
    for v in range(3):
        log.record(f"fan-{v}", "item_viewed", str(old.ml_id))
    log.record("fan-9", "item_viewed", str(new.ml_id))
    run_projections()  # trending reads the popularity projection
    publish("trending", {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 5,
                         "filters": {"host": {"year__gte": 1990}}})
    assert ids(recommend("x", "trending")) == ["502"]


def test_json_endpoint_and_template_tag_agree_with_the_python_api(shop, client):
    shop.record("reader", "item_viewed", "c3")
    run_projections()
    expected = ids(recommend("reader", "for-you", 4, {"category": "Comedy", "item_id": "c0"}))
    resp = client.get("/liverec/recs/for-you/", {"k": 4, "category": "Comedy", "item_id": "c0"},
                      HTTP_X_LIVEREC_TOKEN=make_token("reader"))
    assert resp.status_code == 200
    body = resp.json()
    assert [r["item_id"] for r in body["items"]] == expected and "c0" not in expected
    assert all(r["reasons"] and r["reasons"][0]["text"] for r in body["items"])
    assert client.get("/liverec/recs/for-you/", {"k": 4}).status_code == 403

    from django.template import Context, Template
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.liverec_visitor_id = "reader"
    html = Template('{% load liverec %}{% liverec_widget "for-you" limit=4 category="Comedy" item_id="c0" %}').render(
        Context({"request": request}))
    # The last one is the blank item of the widget's <template> (the markup pushed lists are filled into).
    assert [chunk.split('"')[0] for chunk in html.split('data-liverec-rec-item="')[1:]] == expected + [""]


def test_realtime_task_and_replay_build_the_same_associations(shop):
    from recsys import tasks

    shop.record("late", "item_viewed", "d3")
    shop.record("late", "added_to_cart", "c4")
    tasks.process_events()  # the realtime path: interests and pushes; it asks for the association fold
    tasks.fold_associations()  # which the batch worker runs
    assert ItemAssociation.objects.filter(item_a="d3", item_b="c4").exists()
    incremental = {(a.item_a, a.item_b): (a.log_key, a.updated) for a in ItemAssociation.objects.all()}
    assert cooccurrence.rebuild() > 0
    replayed = {(a.item_a, a.item_b): (a.log_key, a.updated) for a in ItemAssociation.objects.all()}
    assert replayed.keys() == incremental.keys()
    assert all(abs(replayed[p][0] - incremental[p][0]) < 1e-9 and replayed[p][1] == incremental[p][1]
               for p in replayed)


def test_pruning_drops_pairs_that_decayed_to_nothing_relative_to_the_newest_event(isolated_cache):
    from recsys import association_model as am

    half_life = DEFAULTS["COOCCURRENCE"]["HALF_LIFE_HOURS"]
    newest = timezone.now() - timedelta(days=3000)  # an old imported log: the wall clock plays no part
    for a, b, at in (("old", "x", newest - timedelta(hours=half_life * 12)), ("new", "x", newest)):
        ItemAssociation.objects.create(item_a=a, item_b=b, weight=1.0, log_key=am.log_key(1.0, at, half_life), updated=at)
    assert cooccurrence.prune(min_weight=1e-3) == 1
    assert list(ItemAssociation.objects.values_list("item_a", flat=True)) == ["new"]


def test_inline_strategy_reads_share_one_round_trip_and_give_each_strategys_own_answer(embedded_catalogue,
                                                                                      isolated_cache, monkeypatch):
    """Inline (the realtime worker), the database-bound strategies hand their reads to the engine
    (``candidates_steps``), which runs them together (``base.run_together``): one pipelined
    round trip for the content and co-occurrence reads, and the candidates each strategy's own
    ``candidates_many`` gives."""
    from recsys import engine
    from recsys.services import vectors
    from recsys.strategies.base import RequestContext, run_together
    from recsys.strategies.collaborative import CoOccurrence
    from recsys.strategies.content import InterestVectors

    films = {f.title: str(f.ml_id) for f in embedded_catalogue}
    crowd = Timeline(timezone.now() - timedelta(hours=3))
    for v in range(4):  # co-occurrence: Alien with Aliens, The Terminator with Terminator 2
        for title in ("Alien", "Aliens", "The Terminator"):
            crowd.record(f"crowd-{v}", "item_viewed", films[title])
    for title in ("Alien", "The Terminator"):
        crowd.record("together-visitor", "item_viewed", films[title])
    run_projections()
    batches = []
    original = vectors.fetch_binary_many

    def counting(reads):
        batches.append(len(reads))
        return original(reads)

    monkeypatch.setattr(vectors, "fetch_binary_many", counting)
    recs = recommend("together-visitor", "for-you", 5)
    assert recs.items and 2 in batches  # content/interests and co-occurrence, together
    assert {r.strategy for item in recs.items for r in item.reasons} >= {"content/interests",
                                                                          "collaborative/co-occurrence"}

    state = engine.visitor_snapshots(["together-visitor"])["together-visitor"][0]
    from recsys import selectors

    engagements, exclude = selectors.visitor_activity_many(["together-visitor"], {"item_viewed": None})["together-visitor"]
    ctxs = [RequestContext("together-visitor", state=state, exclude=set(exclude), engagements=engagements)]
    strategies = [InterestVectors(), CoOccurrence()]
    together = run_together([s.candidates_steps(ctxs, 10) for s in strategies])
    alone = [s.candidates_many(ctxs, 10) for s in strategies]
    assert together == alone and all(found[0] for found in together)


def test_overlapped_strategy_reads_give_the_inline_answer_on_pool_threads(shop, monkeypatch):
    """With STRATEGY_THREADS the database-bound strategies run on the engine's thread pool,
    each on a pooled connection of its own; the list is the inline one. Inside a transaction
    (uncommitted rows another connection cannot see) everything stays inline."""
    import threading

    from django.conf import settings as django_settings
    from django.db import transaction
    from django.test import override_settings

    from recsys import overlap
    from recsys.strategies.collaborative import CoOccurrence

    for item in ["c0", "d1", "c2"]:
        shop.record("overlap-visitor", "item_viewed", item)
    run_projections()
    inline = recommend("overlap-visitor", "for-you", 5)
    seen = []
    original = CoOccurrence.candidates_many

    original_steps = CoOccurrence.candidates_steps

    def spy(self, ctxs, n):
        seen.append(threading.current_thread().name)
        return original(self, ctxs, n)

    def spy_steps(self, ctxs, n):  # the inline path hands its read to the engine
        seen.append(threading.current_thread().name)
        return original_steps(self, ctxs, n)

    monkeypatch.setattr(CoOccurrence, "candidates_many", spy)
    monkeypatch.setattr(CoOccurrence, "candidates_steps", spy_steps)
    with override_settings(LIVEREC={**django_settings.LIVEREC, "STRATEGY_THREADS": 2}):
        assert overlap.enabled()
        overlapped = recommend("overlap-visitor", "for-you", 5)
        assert seen and seen[-1].startswith("liverec-overlap")
        assert [(r.item_id, r.reasons[0].text) for r in overlapped.items] == \
               [(r.item_id, r.reasons[0].text) for r in inline.items]
        with transaction.atomic():
            assert not overlap.enabled()
            recommend("overlap-visitor", "for-you", 5)
            assert seen[-1] == threading.current_thread().name


def test_a_batch_of_requests_gives_each_list_as_alone_in_as_many_queries_as_one(shop):
    """``recommend_many`` (the realtime worker refreshes every visitor a fold touched at once)
    gives each request exactly the list ``recommend`` gives it alone (visitors with different
    histories and exclusions, a page item, an anonymous visitor, two slots), and reads the
    database as many times for four for-you requests as for one."""
    from recsys.engine import recommend_many

    shop.record("batch-a", "item_viewed", "c0")
    shop.record("batch-a", "item_viewed", "c1")
    shop.record("batch-b", "item_viewed", "d0")
    shop.record("batch-b", "purchased", "d1")
    for item in ["c2", "d2", "c3"]:
        shop.record("batch-c", "item_viewed", item)
    run_projections()
    requests = [("batch-a", "for-you", 5, None), ("batch-b", "for-you", 5, None), ("batch-c", "for-you", 4, None),
                ("batch-a", "similar", 3, {"item_id": "c2"}), ("", "trending", 4, None),
                ("batch-b", "trending", 4, None), ("nobody-yet", "for-you", 5, None), ("batch-c", "for-you", 6, None)]

    def shown(recs):
        return [(r.item_id, round(r.score, 5), [x.text for x in r.reasons]) for r in recs.items]

    alone = [shown(recommend(v, slot, k, ctx)) for v, slot, k, ctx in requests]
    with CaptureQueriesContext(connection) as one:
        recommend_many(requests[:1])
    with CaptureQueriesContext(connection) as many:
        recommend_many([(v, "for-you", 5, None) for v in ("batch-a", "batch-b", "batch-c", "nobody-yet")])
    lists = recommend_many(requests)
    assert [shown(r) for r in lists] == alone
    assert [(r.visitor_id, r.slot) for r in lists] == [(v, slot) for v, slot, _, _ in requests]
    assert all(alone[:3]) and alone[0] != alone[1]
    assert len(many.captured_queries) <= len(one.captured_queries)


def test_one_failing_ranking_does_not_cost_the_other_visitors_their_push(shop, monkeypatch):
    """The realtime worker ranks the visitors a fold touched in one batch; when that batch fails
    because of one visitor, the others are refreshed one by one and still pushed."""
    from recsys.services import push
    from recsys.strategies.collaborative import CoOccurrence

    for visitor, item in (("push-good", "c0"), ("push-bad", "d0")):
        shop.record(visitor, "item_viewed", item)
        push.socket_opened(visitor, ["for-you"])
    run_projections()
    def broken_for_one(original):
        def method(self, ctxs, n):
            if any(ctx.visitor_id == "push-bad" for ctx in ctxs):
                raise RuntimeError("a strategy bug met by one visitor")
            return original(self, ctxs, n)
        return method

    # Both ways a strategy is called: its reads handed to the engine (inline), or on its own.
    for name in ("candidates_steps", "candidates_many"):
        monkeypatch.setattr(CoOccurrence, name, broken_for_one(getattr(CoOccurrence, name)))
    logs: list = []
    outcomes = push.profiles_changed(["push-bad", "push-good"], logs=logs)
    assert outcomes == {"push-bad": "unchanged", "push-good": "pushed"}
    assert [e.visitor_id for e in logs] == ["push-good"]
    for visitor in ("push-good", "push-bad"):
        push.socket_closed(visitor)
