"""Preprocessing verdicts: sessions, rapid repeats and their cache, with the log as the fallback."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.core.cache import cache

from tracking import preprocess
from tracking.models import Event
from tracking.services import append_events
from tracking.validation import CleanEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def ce(name="item_viewed", item="1", at=T0):
    return CleanEvent(uuid=uuid.uuid4(), name=name, visitor_id="v", item_id=item, occurred_at=at)


def raw(item="1", ms_ago=0, name="item_viewed"):
    return {"id": str(uuid.uuid4()), "name": name, "item_id": item, "ts": int(time.time() * 1000) - ms_ago}


def fresh():
    return f"pp-{uuid.uuid4().hex[:16]}"


def test_a_gap_over_the_timeout_starts_a_new_session_within_one_batch():
    events = [ce(at=T0), ce(item="2", at=T0 + timedelta(minutes=10)), ce(item="3", at=T0 + timedelta(minutes=41))]
    sessions, repeats, last = preprocess.assign_sessions(events, None)
    assert sessions[0] == sessions[1] != sessions[2]
    assert repeats == [False, False, False]
    assert (last.session_id, last.item_id) == (sessions[2], "3")


def test_events_out_of_order_are_sessioned_by_their_time():
    events = [ce(item="3", at=T0 + timedelta(minutes=41)), ce(at=T0), ce(item="2", at=T0 + timedelta(minutes=10))]
    sessions, _, _ = preprocess.assign_sessions(events, None)
    assert sessions[1] == sessions[2] != sessions[0]


def test_rapid_repeats_are_flagged_slower_ones_not():
    events = [ce(at=T0), ce(at=T0 + timedelta(seconds=1)), ce(at=T0 + timedelta(seconds=10)),
              ce(name="added_to_cart", at=T0 + timedelta(seconds=10.5))]
    _, repeats, _ = preprocess.assign_sessions(events, None)
    assert repeats == [False, True, False, False]


def test_a_batch_continues_the_previous_session_and_detects_repeats_across_batches():
    prev = preprocess.Last("s-prev", T0, "item_viewed", "1")
    sessions, repeats, _ = preprocess.assign_sessions([ce(at=T0 + timedelta(seconds=1))], prev)
    assert sessions == ["s-prev"] and repeats == [True]
    sessions, _, _ = preprocess.assign_sessions([ce(at=T0 + timedelta(minutes=31))], prev)
    assert sessions != ["s-prev"]


def test_an_old_replayed_event_joins_the_session_without_moving_last_back():
    prev = preprocess.Last("s-prev", T0, "item_viewed", "9")
    sessions, _, last = preprocess.assign_sessions([ce(at=T0 - timedelta(minutes=5))], prev)
    assert sessions == ["s-prev"] and last.occurred_at == T0 and last.item_id == "9"


def test_sessions_continue_across_batches_through_the_cache():
    visitor = fresh()
    append_events([raw("1")], visitor_id=visitor)
    state = json.loads(cache._cache.get_client(write=True).get(cache.make_and_validate_key(preprocess.state_key(visitor))))
    append_events([raw("2")], visitor_id=visitor)
    sessions = set(Event.objects.filter(visitor_id=visitor).values_list("session_id", flat=True))
    assert sessions == {state[0]}


def test_without_the_cached_state_the_log_gives_the_same_session_and_repeat():
    visitor = fresh()
    append_events([raw("1", ms_ago=1500)], visitor_id=visitor)
    cache._cache.get_client(write=True).delete(cache.make_and_validate_key(preprocess.state_key(visitor)))  # cache lost
    append_events([raw("1", ms_ago=500)], visitor_id=visitor)
    first, second = Event.objects.filter(visitor_id=visitor).order_by("id")
    assert first.session_id == second.session_id
    assert (first.is_repeat, second.is_repeat) == (False, True)


def test_with_the_cache_down_everything_is_still_stored_and_sessioned(settings):
    settings.CACHES = {**settings.CACHES, "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                  "LOCATION": "redis://127.0.0.1:1/0"}}
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "RATE_LIMIT_CACHE": "down"}
    visitor = fresh()
    out = append_events([raw("1", ms_ago=5000), raw("2", ms_ago=4000)], visitor_id=visitor)
    out += append_events([raw("3")], visitor_id=visitor)
    assert [o.status for o in out] == ["accepted"] * 3
    assert Event.objects.filter(visitor_id=visitor).values("session_id").distinct().count() == 1


def test_with_a_non_redis_cache_the_same_verdicts_come_from_the_generic_path(settings):
    settings.CACHES = {**settings.CACHES, "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "RATE_LIMIT_CACHE": "local",
                                 "BOT_RATE": {"EVENTS": 3, "SECONDS": 10}}
    visitor = fresh()
    bucket_start = (int(time.time()) // 10 - 1) * 10_000
    burst = [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": str(i), "ts": bucket_start + 1000 + i}
             for i in range(5)]
    append_events(burst, visitor_id=visitor)
    append_events([raw("9")], visitor_id=visitor)
    log = Event.objects.filter(visitor_id=visitor)
    assert log.count() == 6 and log.filter(is_bot=True).count() == 6
    assert log.values("session_id").distinct().count() == 1
