"""Coalesced enqueues of the projection task (recsys.services.events), on the real cache."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from recsys import tasks
from recsys.conf import settings as liverec_settings
from recsys.services import events


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.process_events, "apply_async", lambda **kw: calls.append(kw))
    monkeypatch.setattr(events, "_skip_until", 0.0)
    return calls


def test_appends_while_a_task_waits_enqueue_nothing_more(published):
    for n in range(5):
        events.on_events_appended([n])
    assert len(published) == 1

    events.task_started()  # the queued task begins: what commits from now on needs a new one
    events.on_events_appended([6])
    events.on_events_appended([7])
    assert len(published) == 2


def test_a_failed_enqueue_releases_the_flag_and_backs_off(monkeypatch):
    def broker_down(**kw):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.process_events, "apply_async", broker_down)
    monkeypatch.setattr(events, "_skip_until", 0.0)
    events.on_events_appended([1])
    assert cache.get(events.QUEUED_FLAG) is None  # nothing is queued: the next append may enqueue
    assert events._skip_until > 0  # but not before the back-off (the beat catch-up covers the gap)


def test_the_flag_expires_so_a_lost_task_cannot_stall_the_projection(published):
    events.on_events_appended([1])
    redis = cache._cache.get_client(None)  # the suite's cache is the real Redis/Valkey
    assert 0 < redis.ttl(cache.make_and_validate_key(events.QUEUED_FLAG)) <= events.QUEUED_FLAG_TTL_SECONDS
    cache.delete(events.QUEUED_FLAG)  # what the TTL does after QUEUED_FLAG_TTL_SECONDS
    events.on_events_appended([2])
    assert len(published) == 2


# --- the association fold, requested by the realtime task and run by the batch worker ------------

def test_fold_requests_while_one_waits_enqueue_nothing_more(monkeypatch):
    from recsys.services import cooccurrence

    calls = []
    monkeypatch.setattr(tasks.fold_associations, "apply_async", lambda **kw: calls.append(kw))
    for _ in range(5):
        cooccurrence.request_fold()
    assert len(calls) == 1
    cooccurrence.fold_started()  # the queued fold begins: what is appended from now on needs a new one
    cooccurrence.request_fold()
    assert len(calls) == 2
    # At most one fold per ASSOCIATION_FOLD_INTERVAL_MS: each is sent that much later.
    assert [kw["countdown"] for kw in calls] == [liverec_settings.ASSOCIATION_FOLD_INTERVAL_MS / 1000.0] * 2 != [0.0] * 2
    with override_settings(LIVEREC={"ASSOCIATION_FOLD_INTERVAL_MS": 0}):
        cooccurrence.fold_started()
        cooccurrence.request_fold()
    assert calls[-1]["countdown"] is None


def test_a_failed_fold_request_releases_its_flag(monkeypatch):
    from recsys.services import cooccurrence

    def broker_down(**kw):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.fold_associations, "apply_async", broker_down)
    cooccurrence.request_fold()  # never raises: the events wait in the log
    assert cache.get(cooccurrence.FOLD_QUEUED_FLAG) is None
