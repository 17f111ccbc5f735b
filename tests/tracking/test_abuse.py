"""Rate limits (429 + Retry-After) and bot filtering, against the real Valkey cache and PostgreSQL."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.visitors import as_visitor
from tracking import bots, ratelimit
from tracking.models import Event

pytestmark = pytest.mark.django_db

URL = "/liverec/events/"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def fresh(prefix="v"):
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def view(item="1", ts=None):
    return {"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": item, "ts": ts or int(time.time() * 1000)}


def post(client, visitor, events, ua=BROWSER_UA, ip="127.0.0.1"):
    body = {"site_key": "demo-site-key", "visitor_id": visitor, "sent_at": int(time.time() * 1000), "events": events}
    as_visitor(client, body)
    return client.post(URL, data=json.dumps(body), content_type="application/json",
                       HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)


def tracking_settings(settings, **overrides):
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, **overrides}


def test_a_visitor_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(client, settings):
    tracking_settings(settings, RATE_LIMIT_VISITOR={"EVENTS": 5, "SECONDS": 60})
    visitor = fresh()
    assert post(client, visitor, [view(str(i)) for i in range(5)]).status_code == 200
    refused = post(client, visitor, [view("9")])
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "visitor rate limit of 5 events" in refused.json()["error"]
    assert Event.objects.filter(visitor_id=visitor).count() == 5
    # Another visitor is not affected.
    assert post(client, fresh(), [view("1")]).status_code == 200


def test_limits_count_events_not_requests(client, settings):
    tracking_settings(settings, RATE_LIMIT_VISITOR={"EVENTS": 10, "SECONDS": 60})
    visitor = fresh()
    assert post(client, visitor, [view(str(i)) for i in range(11)]).status_code == 429
    assert not Event.objects.filter(visitor_id=visitor).exists()


def test_one_ip_is_limited_across_visitors(client, settings):
    tracking_settings(settings, RATE_LIMIT_IP={"EVENTS": 3, "SECONDS": 60})
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for _ in range(3):
        assert post(client, fresh(), [view()], ip=ip).status_code == 200
    refused = post(client, fresh(), [view()], ip=ip)
    assert refused.status_code == 429 and "ip rate limit" in refused.json()["error"]
    assert post(client, fresh(), [view()], ip="10.255.255.1").status_code == 200


def test_a_refused_cross_origin_batch_exposes_retry_after_to_the_tracker(client, settings):
    tracking_settings(settings, RATE_LIMIT_VISITOR={"EVENTS": 1, "SECONDS": 60})
    visitor = fresh()
    post(client, visitor, [view()])
    body = {"site_key": "demo-site-key", "visitor_id": visitor, "events": [view()]}
    refused = client.post(URL, data=json.dumps(body), content_type="application/json",
                          HTTP_ORIGIN="http://localhost:8000")
    assert refused.status_code == 429
    assert refused["Access-Control-Expose-Headers"] == "Retry-After"


def test_window_arithmetic_gives_seconds_to_the_window_end(settings):
    tracking_settings(settings, RATE_LIMIT_VISITOR={"EVENTS": 1, "SECONDS": 60}, RATE_LIMIT_IP=None)
    visitor, start = fresh(), 60 * 1_000_000_000 + 45.5  # 45.5 s into a window
    assert ratelimit.check(visitor, "", 1, now=start).allowed
    verdict = ratelimit.check(visitor, "", 1, now=start)
    assert (verdict.allowed, verdict.scope, verdict.retry_after) == (False, "visitor", 15)
    assert ratelimit.check(visitor, "", 1, now=start + 15).allowed  # the next window


def test_rate_limits_can_be_disabled(client, settings):
    tracking_settings(settings, RATE_LIMIT_VISITOR=None, RATE_LIMIT_IP=None)
    visitor = fresh()
    assert post(client, visitor, [view(str(i)) for i in range(100)]).status_code == 200


def test_the_limiter_fails_open_when_the_cache_is_down(client, settings):
    settings.CACHES = {**settings.CACHES, "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                  "LOCATION": "redis://127.0.0.1:1/0"}}
    tracking_settings(settings, RATE_LIMIT_CACHE="down", RATE_LIMIT_VISITOR={"EVENTS": 1, "SECONDS": 60})
    visitor = fresh()
    assert post(client, visitor, [view("1"), view("2")]).status_code == 200
    assert Event.objects.filter(visitor_id=visitor).count() == 2


@pytest.mark.parametrize("ua, bot", [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
    ("facebookexternalhit/1.1", True),
    ("curl/8.5.0", True),
    ("python-requests/2.32.3", True),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0)", True),
    ("Mozilla/5.0 (compatible; YandexSpider/3.0)", True),
    (BROWSER_UA, False),
    ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1", False),
    ("", False),
])
def test_known_bot_user_agents(ua, bot):
    assert bots.is_bot_agent(ua) is bot


def test_bot_events_are_kept_in_the_raw_log_but_flagged(client):
    visitor = fresh()
    resp = post(client, visitor, [view("1"), view("2")], ua="Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert resp.json()["accepted"] == 2
    assert list(Event.objects.filter(visitor_id=visitor).values_list("is_bot", flat=True)) == [True, True]
    human = fresh()
    post(client, human, [view("1")])
    assert Event.objects.get(visitor_id=human).is_bot is False


def test_an_inhuman_rate_flags_the_visitor_and_stays_sticky(client, settings):
    tracking_settings(settings, BOT_RATE={"EVENTS": 10, "SECONDS": 10})
    visitor = fresh()
    bucket_start = (int(time.time()) // 10 - 1) * 10_000  # the previous 10 s bucket, so no edge is crossed
    burst = [view(str(i), ts=bucket_start + 1000 + i) for i in range(15)]  # 15 events within a few ms
    assert post(client, visitor, burst).json()["accepted"] == 15
    assert Event.objects.filter(visitor_id=visitor, is_bot=True).count() == 15
    # Its later, slower events are still flagged (sticky), and all rows are kept.
    post(client, visitor, [view("99")])
    assert Event.objects.filter(visitor_id=visitor).count() == 16
    assert Event.objects.get(visitor_id=visitor, item_id="99").is_bot is True


def test_an_offline_queue_within_the_rate_replayed_at_once_is_not_a_bot(client, settings):
    # The rate counts arrivals (server time): a replay up to BOT_RATE["EVENTS"] is a person's.
    tracking_settings(settings, BOT_RATE={"EVENTS": 60, "SECONDS": 10})
    visitor = fresh()
    now = int(time.time() * 1000)
    # 40 events made one every 15 s while offline, delivered in two quick batches.
    queued = [view(str(i), ts=now - (40 - i) * 15_000) for i in range(40)]
    post(client, visitor, queued[:20])
    post(client, visitor, queued[20:])
    assert Event.objects.filter(visitor_id=visitor).count() == 40
    assert not Event.objects.filter(visitor_id=visitor, is_bot=True).exists()


def test_inhuman_counts_across_batches():
    visitor = fresh()
    t = datetime.fromtimestamp((int(time.time()) // 10) * 10 + 1, tz=timezone.utc)  # 1 s into a bucket
    assert not any(bots.inhuman(visitor, [t + timedelta(milliseconds=i) for i in range(60)]))  # at the limit
    assert all(bots.inhuman(visitor, [t + timedelta(milliseconds=100 + i) for i in range(5)]))  # over it


def test_rate_limit_counters_never_name_the_raw_ip_or_visitor(settings):
    from django.core.cache import caches

    from tracking.conf import settings as tracking_conf

    tracking_settings(settings, RATE_LIMIT_VISITOR={"EVENTS": 100, "SECONDS": 60},
                      RATE_LIMIT_IP={"EVENTS": 100, "SECONDS": 60})
    visitor, ip = fresh("rawid"), "203.0.113.77"
    assert ratelimit.check(visitor, ip, 3).allowed
    assert ratelimit.check(visitor, ip, 3).allowed  # the same counters: the pseudonym is stable

    redis = caches[tracking_conf.RATE_LIMIT_CACHE]._cache.get_client(None)  # the real Valkey
    keys = [k.decode() for k in redis.scan_iter("*lr:rl:*")]
    assert any(":lr:rl:ip:" in k for k in keys) and any(":lr:rl:visitor:" in k for k in keys)
    assert not [k for k in keys if ip in k or visitor in k]
