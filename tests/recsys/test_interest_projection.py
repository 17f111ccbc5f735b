"""The interest projection on real MiniLM embeddings and the real database."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from recsys.models import Item, VisitorProfile
from recsys.services import interests
from tracking.services import record_event

ANIMATED = ["1", "2", "3", "4", "5"]   # Toy Story, Aladdin, The Lion King, Pinocchio, Cinderella
SCIFI = ["6", "7", "8", "9", "10"]     # Alien, Aliens, The Terminator, Star Wars, Blade Runner


@pytest.fixture(autouse=True)
def projection_driven_by_the_test(monkeypatch):
    """These tests drive the projection themselves (apply_new_events/catch_up): the
    session's live workers, if started, must not fold the same events concurrently
    (nor hold locks while the test database is flushed)."""
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])


def vec(item_id: str) -> np.ndarray:
    return np.asarray(Item.objects.get(item_id=item_id).embedding, dtype=np.float32)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def snapshot() -> dict:
    out = {}
    for p in VisitorProfile.objects.order_by("visitor_id"):
        out[p.visitor_id] = {
            "long": np.asarray(p.long_term), "short": np.asarray(p.short_term),
            "interests": [(i.vector, i.weight) for i in interests.load_state(p).interests],
            "rate": p.rate_per_hour, "count": p.event_count, "last": p.last_event_at,
        }
    return out


def test_replay_equals_the_incremental_state(embedded_catalogue):
    start = timezone.now() - timedelta(hours=30)
    script = [
        ("vis-replay-a", "item_viewed", "1", {}), ("vis-replay-a", "item_viewed", "6", {}),
        ("vis-replay-b", "searched", "", {"query": "space battles with robots"}),
        ("vis-replay-a", "added_to_cart", "2", {}), ("vis-replay-b", "item_viewed", "9", {}),
        ("vis-replay-a", "not_interested", "8", {}), ("vis-replay-b", "rated", "10", {"value": 4}),
        ("vis-replay-a", "item_viewed", "7", {"dwell_ms": 800}), ("vis-replay-b", "purchased", "11", {}),
        ("vis-replay-a", "item_viewed", "3", {}), ("vis-replay-b", "item_viewed", "12", {}),
        ("vis-replay-a", "searched", "", {"query": "cartoon princess"}), ("vis-replay-a", "item_viewed", "5", {}),
    ]
    for n, (visitor, name, item, props) in enumerate(script):
        record_event(name, visitor_id=visitor, item_id=item, properties=props,
                     occurred_at=start + timedelta(minutes=37 * n))
    # Incremental: the real projection path, a few events per transaction.
    more = True
    while more:
        _, more = interests.apply_new_events(limit=3)
    incremental = snapshot()
    assert incremental["vis-replay-a"]["count"] == 8 and incremental["vis-replay-b"]["count"] == 5

    assert interests.rebuild() == len(script)
    rebuilt = snapshot()
    assert rebuilt.keys() == incremental.keys()
    for vid, inc in incremental.items():
        reb = rebuilt[vid]
        np.testing.assert_allclose(reb["long"], inc["long"], atol=1e-5)
        np.testing.assert_allclose(reb["short"], inc["short"], atol=1e-5)
        assert len(reb["interests"]) == len(inc["interests"])
        for (rv, rw), (iv, iw) in zip(reb["interests"], inc["interests"]):
            np.testing.assert_allclose(rv, iv, atol=1e-5)
            assert rw == pytest.approx(iw, abs=1e-5)
        assert reb["rate"] == pytest.approx(inc["rate"], rel=1e-9)
        assert (reb["count"], reb["last"]) == (inc["count"], inc["last"])


def test_two_clearly_different_tastes_become_two_interests(embedded_catalogue):
    start = timezone.now() - timedelta(hours=3)
    for n, item in enumerate(x for pair in zip(ANIMATED, SCIFI) for x in pair):
        record_event("item_viewed", visitor_id="vis-two-tastes", item_id=item, occurred_at=start + timedelta(minutes=5 * n))
    interests.catch_up()
    state = interests.visitor_state("vis-two-tastes")
    assert 2 <= len(state.interests) <= 4
    anim, scifi = unit(sum(vec(i) for i in ANIMATED)), unit(sum(vec(i) for i in SCIFI))
    # One centroid per taste, each far closer to its own films than to the other's:
    # not one average of the two.
    best_anim = max(state.interests, key=lambda it: it.direction() @ anim)
    best_scifi = max(state.interests, key=lambda it: it.direction() @ scifi)
    assert best_anim is not best_scifi
    assert best_anim.direction() @ anim > 0.9 and best_anim.direction() @ scifi < 0.75
    assert best_scifi.direction() @ scifi > 0.9 and best_scifi.direction() @ anim < 0.75
    average = unit(anim + scifi)
    assert best_anim.direction() @ anim > average @ anim


def test_a_search_moves_the_short_term_vector_at_once(embedded_catalogue):
    start = timezone.now() - timedelta(minutes=30)
    for n, item in enumerate(SCIFI):
        record_event("item_viewed", visitor_id="vis-search", item_id=item, occurred_at=start + timedelta(minutes=n))
    interests.catch_up()
    before = interests.visitor_state("vis-search")
    anim = unit(sum(vec(i) for i in ANIMATED))
    record_event("searched", visitor_id="vis-search", properties={"query": "animated children's cartoons"},
                 occurred_at=start + timedelta(minutes=6))
    interests.catch_up()
    after = interests.visitor_state("vis-search")
    assert unit(before.short_term) @ anim < 0.6
    # One query flips the session towards animation; the long-term memory still leans sci-fi.
    assert unit(after.short_term) @ anim > unit(after.short_term) @ unit(sum(vec(i) for i in SCIFI))
    assert unit(after.short_term) @ anim - unit(before.short_term) @ anim > 0.15
    assert unit(after.long_term) @ anim < unit(after.long_term) @ unit(sum(vec(i) for i in SCIFI))
    assert len(after.interests) == len(before.interests)


def test_not_interested_and_a_quick_bounce_push_away(embedded_catalogue):
    start = timezone.now() - timedelta(minutes=30)
    record_event("item_viewed", visitor_id="vis-neg", item_id="6", occurred_at=start)
    record_event("item_viewed", visitor_id="vis-neg", item_id="1", occurred_at=start + timedelta(minutes=1))
    interests.catch_up()
    before = interests.visitor_state("vis-neg")
    record_event("item_viewed", visitor_id="vis-neg", item_id="7", properties={"dwell_ms": 900},
                 occurred_at=start + timedelta(minutes=2))
    record_event("not_interested", visitor_id="vis-neg", item_id="8", occurred_at=start + timedelta(minutes=3))
    interests.catch_up()
    after = interests.visitor_state("vis-neg")
    scifi = unit(vec("7") + vec("8"))
    assert unit(after.long_term) @ scifi < unit(before.long_term) @ scifi
    assert unit(after.short_term) @ scifi < unit(before.short_term) @ scifi


def test_items_seen_only_in_events_are_created_embedded_and_counted(embedded_catalogue):
    record_event("item_viewed", visitor_id="vis-new-item", item_id="sku-9001",
                 properties={"title": "Robot dinosaur space adventure", "category": "Sci-Fi"})
    interests.catch_up()
    item = Item.objects.get(item_id="sku-9001")
    assert item.source == "events" and item.categories == ["Sci-Fi"] and item.embedding is not None
    state = interests.visitor_state("vis-new-item")
    assert unit(state.long_term) @ unit(item.embedding) > 0.99


def test_refresh_hint_follows_the_activity_rate(embedded_catalogue):
    now = timezone.now()
    for n in range(12):
        record_event("item_viewed", visitor_id="vis-busy", item_id=ANIMATED[n % 5], occurred_at=now - timedelta(seconds=60 - 5 * n))
    record_event("item_viewed", visitor_id="vis-calm", item_id="1", occurred_at=now - timedelta(hours=2))
    interests.catch_up()
    busy, calm = interests.refresh_hint("vis-busy", now), interests.refresh_hint("vis-calm", now)
    assert busy["priority"] > calm["priority"]
    assert busy["debounce_ms"] < calm["debounce_ms"]


def test_the_realtime_fold_hands_back_visitors_first_come_first_served(embedded_catalogue):
    """Under load one fold touches many visitors and the worker refreshes them one after the
    other: in the order their first pending event arrived, not by name."""
    for visitor, item in [("vis-fifo-c", "1"), ("vis-fifo-a", "2"), ("vis-fifo-c", "3"), ("vis-fifo-b", "6"),
                          ("vis-fifo-a", "7")]:
        record_event("item_viewed", visitor_id=visitor, item_id=item)
    from tracking.models import Event

    touched = interests.catch_up_in_order()
    assert [v for v, _ in touched] == ["vis-fifo-c", "vis-fifo-a", "vis-fifo-b"]
    # Each with when its newest event was received: push latency is measured from it.
    newest = {v: Event.objects.filter(visitor_id=v).order_by("-id").values_list("received_at", flat=True)[0]
              for v, _ in touched}
    assert dict(touched) == newest
    assert interests.catch_up_in_order() == []  # nothing pending


def test_the_fold_resumes_from_and_stores_exactly_what_the_orm_reads(embedded_catalogue):
    """The fold reads profiles and item vectors in pgvector's binary format and writes them
    back in binary: the state it resumes from is the one the ORM reads, to the bit, and what
    it stores is its in-memory state (interests to six decimals), for a new visitor as for
    a known one. Otherwise an event would count differently in a replay than live."""
    from django.db import transaction

    from tracking.models import Event

    start = timezone.now() - timedelta(hours=5)
    for n, item in enumerate(x for pair in zip(ANIMATED, SCIFI) for x in pair):
        record_event("item_viewed", visitor_id="vis-binary", user_id="u-binary", item_id=item,
                     occurred_at=start + timedelta(minutes=9 * n))
    record_event("rated", visitor_id="vis-binary", item_id="11", properties={"value": 2},
                 occurred_at=start + timedelta(hours=2))
    interests.catch_up()

    orm = VisitorProfile.objects.get(visitor_id="vis-binary")
    loaded = interests.load_profiles(["vis-binary", "vis-nobody"])
    assert list(loaded) == ["vis-binary"]
    got = loaded["vis-binary"]
    assert (got.pk, got.user_id, got.last_event_id) == (orm.pk, "u-binary", orm.last_event_id)
    assert got.summary == orm.summary  # a column the fold never reads, loaded on access
    a, b = interests.load_state(got), interests.load_state(orm)
    assert len(b.interests) >= 2
    assert a.long_term.dtype == a.short_term.dtype == np.float32
    assert np.array_equal(a.long_term, b.long_term) and np.array_equal(a.short_term, b.short_term)
    assert [(list(i.vector), i.weight, i.label) for i in a.interests] == \
        [(list(i.vector), i.weight, i.label) for i in b.interests]
    assert (a.rate_per_hour, a.last_event_at, a.event_count) == (b.rate_per_hour, b.last_event_at, b.event_count)

    def fold_and_save(*events):
        with transaction.atomic():
            profiles = interests.load_profiles({e.visitor_id for e in events})
            touched = interests.fold(events, profiles)
            interests._save([profiles[v] for v in touched])
        for visitor_id, folded in profiles.items():
            stored = VisitorProfile.objects.get(visitor_id=visitor_id)
            assert stored.pk == folded.pk and not folded._state.adding
            for column in ("long_term", "short_term"):
                want = getattr(folded, column)
                assert stored_vector(stored, column) == (None if want is None else want.tolist())
            assert stored.interests == folded.interests
            assert bytes(stored.interest_vectors) == bytes(folded.interest_vectors)
            assert (stored.user_id, stored.event_count, stored.last_event_id, stored.last_event_at) == \
                (folded.user_id, folded.event_count, folded.last_event_id, folded.last_event_at)
            assert stored.summary == ""
        return touched

    def stored_vector(profile, column):
        value = getattr(profile, column)
        return None if value is None else np.asarray(value, dtype=np.float32).tolist()

    record_event("item_viewed", visitor_id="vis-binary", item_id="12", occurred_at=start + timedelta(hours=3))
    record_event("added_to_cart", visitor_id="vis-binary-new", user_id="u-new", item_id="6",
                 occurred_at=start + timedelta(hours=3))
    assert fold_and_save(*Event.objects.filter(id__gt=orm.last_event_id).order_by("id")) == \
        {"vis-binary", "vis-binary-new"}
    # A new visitor whose only event carries no vector: a row without vectors.
    record_event("identified", visitor_id="vis-binary-none", user_id="u-none")
    assert fold_and_save(Event.objects.get(visitor_id="vis-binary-none")) == {"vis-binary-none"}
    assert VisitorProfile.objects.get(visitor_id="vis-binary-none").long_term is None


def test_interest_centroids_are_stored_exactly_and_old_json_profiles_convert(transactional_db):
    """The centroids go into ``interest_vectors`` as float32 bytes and come back bit for bit
    (any magnitude, signed zeros); ``interests`` keeps weights and labels only. Migration 0007
    moves the centroids of a profile stored the old way (floats in the JSON) into the column,
    and its reverse puts them back."""
    from importlib import import_module

    from django.apps import apps

    from recsys import interest_model as im

    rng = np.random.default_rng(7)
    vectors = [rng.standard_normal(384).astype(np.float32) * np.float32(scale)
               for scale in (1e-7, 1e-4, 0.05, 1.0, 40.0, 3e5)]
    vectors.append(np.asarray([k / 128 for k in range(-200, 182)] + [-0.0, 0.0], dtype=np.float32))
    state = im.InterestState(interests=[im.Interest(v, 0.5 + n, f"label {n}") for n, v in enumerate(vectors)])
    profile = VisitorProfile(visitor_id="vis-exact")
    interests.store_state(profile, state)
    assert profile.interests == [{"weight": 0.5 + n, "label": f"label {n}"} for n in range(len(vectors))]
    interests._save([profile])
    back = interests.load_state(interests.load_profiles(["vis-exact"])["vis-exact"])
    assert [it.vector.tobytes() for it in back.interests] == [v.tobytes() for v in vectors]
    assert [it.label for it in back.interests] == [f"label {n}" for n in range(len(vectors))]
    engine_read = interests.visitor_snapshots(["vis-exact"])["vis-exact"][0]
    assert [it.vector.tobytes() for it in engine_read.interests] == [v.tobytes() for v in vectors]

    old = [{"vector": [round(float(x), 6) for x in v], "weight": 1.0, "label": "old"} for v in vectors[2:4]]
    VisitorProfile.objects.create(visitor_id="vis-old-format", interests=old)
    migration = import_module("recsys.migrations.0007_visitorprofile_interest_vectors")
    migration._split(apps, None)
    converted = VisitorProfile.objects.get(visitor_id="vis-old-format")
    assert converted.interests == [{"weight": 1.0, "label": "old"}] * 2
    got = interests.load_state(converted).interests
    assert [it.vector.tolist() for it in got] == [np.asarray(i["vector"], dtype=np.float32).tolist() for i in old]
    assert VisitorProfile.objects.get(visitor_id="vis-exact").interest_vectors == profile.interest_vectors
    migration._join(apps, None)
    assert VisitorProfile.objects.get(visitor_id="vis-old-format").interests == \
        [{**i, "vector": np.round(np.asarray(i["vector"], dtype=np.float32).astype(np.float64), 6).tolist()}
         for i in old]
