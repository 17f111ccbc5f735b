"""Forget, export and retention against the real PostgreSQL, with the real interest projection."""
from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from recsys.models import ItemAssociation, RecommendationLog, VisitorProfile, VisitorSequenceState
from recsys.services import cooccurrence, interests
from tests.visitors import as_visitor
from tracking import privacy, services
from tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def view(item, ts=None, name="item_viewed", **props):
    return {"id": str(uuid.uuid4()), "name": name, "item_id": item,
            "ts": ts if ts is not None else int(time.time() * 1000), "props": props}


def profiles():
    return {p.visitor_id: p for p in VisitorProfile.objects.all()}


def test_forget_erases_events_and_profile_and_a_replay_shows_no_trace(embedded_catalogue):
    services.append_events([view("1"), view("2")], visitor_id="visitor-forget-me")
    services.append_events([view("6")], visitor_id="visitor-keep-me")
    interests.catch_up()
    cooccurrence.catch_up()
    RecommendationLog.objects.create(rec_id="rec-forget-1", visitor_id="visitor-forget-me", slot="for-you",
                                     channel="page", items=["3", "4"])
    assert set(profiles()) == {"visitor-forget-me", "visitor-keep-me"}
    assert ItemAssociation.objects.filter(item_a__in=["1", "2"], item_b__in=["1", "2"]).exists()
    assert privacy.export_visitor("visitor-forget-me")["served_lists"][0]["items"] == ["3", "4"]
    kept_before = np.asarray(profiles()["visitor-keep-me"].long_term)

    report = privacy.forget_visitor("visitor-forget-me")

    assert report["events_deleted"] == 2 and report["profiles_deleted"] == 1 and report["served_lists_deleted"] == 1
    assert not RecommendationLog.objects.filter(visitor_id="visitor-forget-me").exists()
    assert not Event.objects.filter(visitor_id="visitor-forget-me").exists()
    assert set(profiles()) == {"visitor-keep-me"}
    # The real replay path, as an operator runs it: still no trace, the other visitor intact.
    call_command("recsys_replay", stdout=__import__("io").StringIO(), stderr=__import__("io").StringIO())
    assert set(profiles()) == {"visitor-keep-me"}
    # The pair their two views formed is gone from the association projection too.
    assert not ItemAssociation.objects.filter(item_a__in=["1", "2"], item_b__in=["1", "2"]).exists()
    np.testing.assert_allclose(np.asarray(profiles()["visitor-keep-me"].long_term), kept_before, atol=1e-6)
    assert "visitor-forget-me" not in json.dumps(privacy.export_visitor("visitor-forget-me"))[60:]
    assert privacy.forget_visitor("visitor-forget-me")["events_deleted"] == 0  # idempotent


def test_forget_user_erases_every_visitor_id_they_used(embedded_catalogue):
    services.append_events([view("1")], visitor_id="visitor-laptop1", user_id="42")
    services.append_events([view("2")], visitor_id="visitor-laptop1")  # anonymous, same browser
    services.append_events([view("3")], visitor_id="visitor-phone01", user_id="42")
    services.append_events([view("4")], visitor_id="visitor-someone", user_id="7")
    interests.catch_up()

    out = json.loads(_command("liverec_forget", "--user", "42"))

    assert out["events_deleted"] == 3 and out["visitor_ids"] == ["visitor-laptop1", "visitor-phone01"]
    assert list(Event.objects.values_list("visitor_id", flat=True)) == ["visitor-someone"]
    assert set(profiles()) == {"visitor-someone"}


def _command(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_export_is_json_with_events_and_profile(embedded_catalogue):
    services.append_events([view("1", note="<script>alert(1)</script>"), view("2")], visitor_id="visitor-export1")
    services.append_events([view("3")], visitor_id="visitor-other01")
    interests.catch_up()

    data = json.loads(_command("liverec_export", "--visitor", "visitor-export1"))

    assert [e["item_id"] for e in data["events"]] == ["1", "2"]
    assert data["events"][0]["properties"]["note"] == "<script>alert(1)</script>"
    (profile,) = data["profiles"]
    assert profile["visitor_id"] == "visitor-export1" and profile["event_count"] == 2
    assert len(profile["long_term"]) == 384


def test_events_cannot_be_deleted_outside_the_privacy_services():
    services.append_events([view("1")], visitor_id="visitor-nodelete")
    with pytest.raises(TypeError, match="tracking.privacy"):
        Event.objects.all().delete()
    with pytest.raises(TypeError, match="tracking.privacy"):
        Event.objects.get().delete()
    assert Event.objects.count() == 1


def test_retention_deletes_old_events_and_profiles_equal_a_replay(embedded_catalogue, settings):
    # MAX_EVENT_AGE refuses 40-day-old browser events; an import may carry them.
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "MAX_EVENT_AGE_SECONDS": 400 * 86400}
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    for vid, item, at in [("visitor-ret-old", "1", old), ("visitor-ret-old", "6", recent),
                          ("visitor-ret-gone", "2", old), ("visitor-ret-new", "7", recent)]:
        services.record_event("item_viewed", visitor_id=vid, item_id=item, occurred_at=at)
    interests.catch_up()
    assert profiles()["visitor-ret-old"].event_count == 2
    # A sequence state the old event went into (as the realtime fold stores them).
    VisitorSequenceState.objects.create(visitor_id="visitor-ret-old", model_id=1,
                                        basis=profiles()["visitor-ret-old"].last_event_id, state=b"")

    report = privacy.apply_retention(days=30)

    assert report["events_deleted"] == 2 and report["visitors"] == 2
    assert not Event.objects.filter(occurred_at__lt=now - timedelta(days=30)).exists()
    after = {v: (p.event_count, np.asarray(p.long_term)) for v, p in profiles().items()}
    assert set(after) == {"visitor-ret-old", "visitor-ret-new"} and after["visitor-ret-old"][0] == 1
    assert not VisitorSequenceState.objects.filter(visitor_id="visitor-ret-old").exists()
    interests.rebuild()
    replayed = {v: (p.event_count, np.asarray(p.long_term)) for v, p in profiles().items()}
    assert set(replayed) == set(after)
    for vid in after:
        assert after[vid][0] == replayed[vid][0]
        np.testing.assert_allclose(after[vid][1], replayed[vid][1], atol=1e-6)


def test_retention_deletes_the_lists_served_before_the_cutoff(settings):
    """The serve log names a visitor and what they were shown: it is kept as long as events."""
    from recsys.models import RecommendationLog

    now = timezone.now()
    for rec_id, visitor, age in (("served-old", "visitor-log-1", 40), ("served-new", "visitor-log-1", 1),
                                 ("served-old-2", "visitor-log-2", 31)):
        row = RecommendationLog.objects.create(rec_id=rec_id, visitor_id=visitor, slot="for-you", channel="push",
                                               items=["1"], strategies={})
        RecommendationLog.objects.filter(pk=row.pk).update(created_at=now - timedelta(days=age))

    report = privacy.apply_retention(days=30)

    assert report["served_lists_deleted"] == 2
    assert list(RecommendationLog.objects.values_list("rec_id", flat=True)) == ["served-new"]


def test_retention_off_by_default_keeps_everything():
    services.append_events([view("1")], visitor_id="visitor-keepall")
    assert privacy.apply_retention()["events_deleted"] == 0 and Event.objects.count() == 1


def test_ip_is_truncated_and_user_agent_not_kept_unless_allowed(client, settings):
    payload = {"site_key": "demo-site-key", "visitor_id": "visitor-ipcheck", "events": [view("1", **{"$ip": "1.2.3.4"})]}
    headers = {"REMOTE_ADDR": "203.0.113.77", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux) SecretBrowser/1.0"}
    as_visitor(client, payload)

    def stored_row_text():
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT t::text FROM tracking_event t ORDER BY id DESC LIMIT 1")
            return cur.fetchone()[0]

    # Default: neither the address nor the browser string is kept anywhere in the row.
    assert client.post("/liverec/events/", json.dumps(payload), content_type="application/json", **headers).status_code == 200
    row = stored_row_text()
    assert "203.0.113" not in row and "SecretBrowser" not in row and "1.2.3.4" not in row

    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "IP_STORAGE": "truncated"}
    payload["events"] = [view("2")]
    client.post("/liverec/events/", json.dumps(payload), content_type="application/json", **headers)
    assert Event.objects.get(item_id="2").properties["$ip"] == "203.0.113.0"
    assert "203.0.113.77" not in stored_row_text() and "SecretBrowser" not in stored_row_text()

    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "STORE_USER_AGENT": True}
    payload["events"] = [view("3")]
    client.post("/liverec/events/", json.dumps(payload), content_type="application/json", **headers)
    assert Event.objects.get(item_id="3").properties["$ua"].endswith("SecretBrowser/1.0")


@pytest.mark.parametrize("ip,expected", [
    ("203.0.113.77", "203.0.113.0"), ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
    ("::ffff:198.51.100.9", "198.51.100.0"), ("not-an-ip", ""),
])
def test_truncate_ip(ip, expected):
    assert privacy.truncate_ip(ip) == expected


def test_the_retention_task_is_scheduled_and_runs_with_the_setting(settings):
    from django.conf import settings as django_settings

    from tracking.tasks import apply_retention

    scheduled = {e["task"] for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"tracking.tasks.apply_retention", "recsys.tasks.process_events"} <= scheduled
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "MAX_EVENT_AGE_SECONDS": 400 * 86400,
                                 "RETENTION_DAYS": 90}
    services.record_event("page_viewed", visitor_id="visitor-task-old", occurred_at=timezone.now() - timedelta(days=91))
    services.record_event("page_viewed", visitor_id="visitor-task-new")
    result = apply_retention.apply().get()
    assert result["events_deleted"] == 1 and result["retention_days"] == 90
    assert list(Event.objects.values_list("visitor_id", flat=True)) == ["visitor-task-new"]
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "RETENTION_DAYS": 0}
    with pytest.raises(ValueError, match="RETENTION_DAYS"):
        privacy.apply_retention()
