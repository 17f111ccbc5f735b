"""The event log partitioned by time on the real PostgreSQL: appends land in their month's
partition, re-sends stay duplicates across partition boundaries, retention drops whole
partitions (forget still deletes rows), and the projections replay across partitions to what
the incremental fold gave."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from recsys.models import RecommendationLog, VisitorProfile
from recsys.services import interests
from tracking import hooks, partitions, privacy, services
from tracking.models import Event, EventKey

pytestmark = pytest.mark.django_db(transaction=True)

# The first instant of a month and the last second before it: one boundary between partitions.
BOUNDARY = datetime(2026, 11, 1, tzinfo=dt_timezone.utc)


@pytest.fixture(autouse=True)
def quiet_hooks(monkeypatch):
    """Appends enqueue no fold here: the test folds in process where it wants one."""
    monkeypatch.setattr(hooks, "_subscribers", [])


@pytest.fixture
def clock(monkeypatch):
    """Set the server clock ingest stamps ``received_at`` with."""
    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)
    return set_to


def append(visitor: str, *, at: datetime, event_id: str | None = None, name: str = "item_viewed",
           item: str = "1") -> str:
    event = {"id": event_id or str(uuid.uuid4()), "name": name, "item_id": item, "ts": int(at.timestamp() * 1000)}
    return services.append_events([event], visitor_id=visitor)[0].status


def partition_of(event_uuid: str) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM tracking_event WHERE uuid = %s", [event_uuid])
        return cur.fetchone()[0]


def test_the_log_is_partitioned_by_month_with_partitions_ahead():
    assert partitions.is_partitioned()
    parts = partitions.partitions()
    start, _ = partitions.bounds(timezone.now())
    covered = [p for p in parts if p.end > start]
    assert len(covered) >= 3  # this month and EVENT_PARTITIONS_AHEAD (2) after it
    assert all(partitions.bounds(p.start) == (p.start, p.end) for p in covered)  # whole months


def test_a_resend_across_a_partition_boundary_stays_a_duplicate(clock):
    partitions.ensure_range(BOUNDARY - timedelta(days=30), BOUNDARY + timedelta(days=30))
    event_id = str(uuid.uuid4())
    clock(BOUNDARY - timedelta(seconds=1))
    assert append("visitor-resend", at=BOUNDARY - timedelta(seconds=2), event_id=event_id) == "accepted"
    before = partition_of(event_id)
    clock(BOUNDARY + timedelta(hours=1))  # the tracker re-sends after the month turned
    assert append("visitor-resend", at=BOUNDARY - timedelta(seconds=2), event_id=event_id) == "duplicate"
    assert append("visitor-resend", at=BOUNDARY + timedelta(minutes=1)) == "accepted"
    assert Event.objects.filter(uuid=event_id).count() == 1
    assert partition_of(event_id) == before == "tracking_event_p20261001"
    assert {partition_of(str(u)) for u in Event.objects.values_list("uuid", flat=True)} == {
        "tracking_event_p20261001", "tracking_event_p20261101"}
    assert EventKey.objects.count() == 2


def test_rows_no_partition_covers_wait_in_the_default_partition_and_move_when_it_is_made(clock):
    far = datetime(2031, 3, 10, tzinfo=dt_timezone.utc)
    clock(far)
    event_id = str(uuid.uuid4())
    assert append("visitor-far", at=far, event_id=event_id) == "accepted"
    assert partition_of(event_id) == partitions.DEFAULT_PARTITION
    created = partitions.ensure_partitions(now=far, ahead=0)
    assert created == ["tracking_event_p20310301"]
    assert partition_of(event_id) == "tracking_event_p20310301"
    assert append("visitor-far", at=far, event_id=event_id) == "duplicate"


def snapshot() -> dict:
    return {p.visitor_id: (p.event_count, p.last_event_id, np.asarray(p.long_term), np.asarray(p.short_term))
            for p in VisitorProfile.objects.all()}


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for vid, (count, last_id, long_term, short_term) in left.items():
        assert (count, last_id) == right[vid][:2]
        np.testing.assert_allclose(long_term, right[vid][2], atol=1e-5)
        np.testing.assert_allclose(short_term, right[vid][3], atol=1e-5)


def test_replay_across_a_partition_boundary_equals_the_incremental_fold(clock, embedded_catalogue):
    partitions.ensure_range(BOUNDARY - timedelta(days=30), BOUNDARY + timedelta(days=30))
    views = {"visitor-p1": ["1", "2", "6", "7"], "visitor-p2": ["6", "9", "1", "3"]}
    for step in range(4):
        # Two views each side of the boundary, folded as they come.
        at = BOUNDARY + timedelta(minutes=10 * (step - 2) + 1)
        clock(at)
        for visitor, items in views.items():
            assert append(visitor, at=at, item=items[step]) == "accepted"
        interests.catch_up(settle=0)
    assert len({partition_of(str(u)) for u in Event.objects.values_list("uuid", flat=True)}) == 2
    incremental = snapshot()
    assert {v: s[0] for v, s in incremental.items()} == {"visitor-p1": 4, "visitor-p2": 4}
    interests.rebuild()
    assert_same(incremental, snapshot())


def test_retention_drops_whole_partitions_and_prunes_the_served_lists(clock, embedded_catalogue):
    now = datetime(2026, 12, 15, tzinfo=dt_timezone.utc)
    for month in (9, 10, 11, 12):
        start, end = partitions.bounds(datetime(2026, month, 5, tzinfo=dt_timezone.utc))
        partitions.ensure_range(start, end)
    for month, day in ((9, 20), (10, 20), (11, 3), (12, 10)):
        at = datetime(2026, month, day, tzinfo=dt_timezone.utc)
        clock(at)
        assert append("visitor-old", at=at, item="6") == "accepted"
        assert append("visitor-kept", at=at, item="1") == "accepted"
    interests.catch_up(settle=0)
    # Two served lists: one from before the cutoff, one after.
    for age_days in (60, 1):
        log = RecommendationLog.objects.create(rec_id=uuid.uuid4().hex[:32], visitor_id="visitor-old",
                                               slot="for-you", channel="push", items=["1"])
        RecommendationLog.objects.filter(pk=log.pk).update(created_at=now - timedelta(days=age_days))

    clock(now)
    # Cutoff 2026-11-05: September and October end before it and go whole; 3 November's
    # events are older than the cutoff inside the November partition and go as rows.
    report = privacy.apply_retention(now=now, days=40)
    assert report["partitions_dropped"] == ["tracking_event_p20260901", "tracking_event_p20261001"]
    assert report["events_deleted"] == 6
    assert report["served_lists_deleted"] == 1 and RecommendationLog.objects.count() == 1
    assert report["event_keys_deleted"] == 6 and EventKey.objects.count() == 2
    assert [p.name for p in partitions.partitions() if p.start < BOUNDARY] == []
    assert Event.objects.count() == 2
    # The projections followed: what remains, as a replay of it gives.
    retained = snapshot()
    assert {v: s[0] for v, s in retained.items()} == {"visitor-old": 1, "visitor-kept": 1}
    interests.rebuild()
    assert_same(retained, snapshot())


def test_forget_still_deletes_a_visitors_rows_in_every_partition(clock):
    partitions.ensure_range(BOUNDARY - timedelta(days=30), BOUNDARY + timedelta(days=30))
    for at in (BOUNDARY - timedelta(days=3), BOUNDARY + timedelta(days=3)):
        clock(at)
        append("visitor-forgotten", at=at)
        append("visitor-stays", at=at)
    report = privacy.forget_visitor("visitor-forgotten")
    assert report["events_deleted"] == 2
    assert not Event.objects.filter(visitor_id="visitor-forgotten").exists()
    assert Event.objects.filter(visitor_id="visitor-stays").count() == 2
    assert len(partitions.partitions()) >= 2  # rows go, partitions stay


def test_the_periodic_task_creates_partitions_ahead_of_the_clock(clock):
    from tracking.tasks import ensure_event_partitions

    clock(datetime(2032, 5, 20, tzinfo=dt_timezone.utc))
    assert ensure_event_partitions() == ["tracking_event_p20320501", "tracking_event_p20320601",
                                         "tracking_event_p20320701"]
    assert ensure_event_partitions() == []  # idempotent


def test_the_interval_is_configurable_and_never_overlaps_older_partitions(settings):
    partitions.ensure_range(datetime(2033, 1, 1, tzinfo=dt_timezone.utc), datetime(2033, 1, 2, tzinfo=dt_timezone.utc))
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "EVENT_PARTITION_INTERVAL": "week"}
    # Monday 2033-01-31: its week begins in January, which a month partition already covers.
    created = partitions.ensure_partitions(now=datetime(2033, 2, 2, tzinfo=dt_timezone.utc), ahead=1)
    assert created == ["tracking_event_p20330201_2033020700", "tracking_event_p20330207"]
    settings.LIVEREC_TRACKING = {**settings.LIVEREC_TRACKING, "EVENT_PARTITION_INTERVAL": "fortnight"}
    with pytest.raises(ValueError, match=r"EVENT_PARTITION_INTERVAL.*'month', 'week', 'day'"):
        partitions.ensure_partitions()
