"""Per-visitor push state: the same answers through Valkey's scripts and through the cache API."""
from __future__ import annotations

import pytest
from django.core.cache import cache, caches
from django.test import override_settings

from recsys.cache import raw_key, redis_client
from recsys.live import pushstate

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pushstate-test"}}


@pytest.fixture(params=["redis", "cache-api"])
def backend(request):
    if request.param == "redis":
        assert redis_client() is not None  # the suite's cache is Valkey
        yield request.param
        return
    with override_settings(CACHES=LOCMEM):
        caches["default"].clear()
        assert redis_client() is None
        yield request.param
        caches["default"].clear()


def change(now_ms: int) -> tuple[bool, bool]:
    return pushstate.on_change_many([("t:seq", "t:epoch", "t:online", "t:last", "t:slots")], now_ms=now_ms,
                                    window_ms=250, epoch_ttl=60, burst_ttl=30)[0][:2]


def test_sequence_numbers_count_up_from_one_and_read_back_through_the_cache(backend):
    assert [pushstate.next_seq("t:seq") for _ in range(3)] == [1, 2, 3]
    assert cache.get("t:seq") == 3


def test_a_change_numbers_the_epoch_and_opens_a_burst_only_after_a_quiet_window(backend):
    assert change(1_000) == (False, False)  # nobody watching: numbered, no burst timer
    assert cache.get("t:epoch") == 1 and cache.get("t:last") is None
    cache.set("t:online", 2)
    assert change(2_000) == (True, True)  # the first change after a quiet spell leads
    assert change(2_100) == (True, False)  # 100 ms later: part of the same burst
    assert change(2_300) == (True, False)  # the window runs from the latest change
    assert change(2_600) == (True, True)
    assert pushstate.last_ms("t:last") == 2_600 and cache.get("t:epoch") == 5
    pushstate.set_last_many(["t:last"], 9_000, 30)
    assert change(9_100) == (True, False)


def test_a_signature_swaps_only_when_it_changes(backend):
    assert pushstate.swap_signature("t:sig", '["a","b"]', 60)
    assert not pushstate.swap_signature("t:sig", '["a","b"]', 60)
    assert pushstate.swap_signature("t:sig", '["b","a"]', 60)


def test_a_change_returns_its_number_and_the_watched_visitors_slot_registry(backend):
    keys = [("t:seq", "t:epoch", "t:online", "t:last", "t:slots")]
    first = pushstate.on_change_many(keys, now_ms=1_000, window_ms=250, epoch_ttl=60, burst_ttl=30)[0]
    assert (first.online, first.seq, first.slots) == (False, 1, None)  # offline: numbered, registry unread
    cache.set("t:online", 1)
    cache.set("t:slots", {"for-you": 1.5, "similar:7": 2.5})  # as push.open_slots stores it
    second = pushstate.on_change_many(keys, now_ms=2_000, window_ms=250, epoch_ttl=60, burst_ttl=30)[0]
    assert second == (True, True, 2, {"for-you": 1.5, "similar:7": 2.5}) and cache.get("t:epoch") == 2


def test_scripts_run_once_each_after_the_server_lost_them():
    """The scripts go by sha; a server that forgot them (restart, SCRIPT FLUSH) gets them
    loaded again, and no call of the pipeline runs twice."""
    client = redis_client()
    cache.set("t:online", 1)
    client.script_flush()
    assert change(1_000) == (True, True)
    client.script_flush()
    assert change(1_100) == (True, False)
    assert cache.get("t:seq") == 2  # each change counted once
    client.script_flush()
    assert pushstate.swap_signatures([("t:sig1", "a"), ("t:sig2", "b")], 60) == [True, True]
    assert pushstate.swap_signatures([("t:sig1", "a"), ("t:sig2", "c")], 60) == [False, True]
