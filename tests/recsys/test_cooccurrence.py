"""The co-occurrence projection on the real database: the realtime fold reads each visitor's
window back from the log, and must see it as a replay holds it in memory."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from recsys.models import ItemAssociation
from recsys.services import cooccurrence
from tests.recsys.engine_helpers import isolated_cache, make_items  # noqa: F401
from tracking.imports import ImportRow, import_rows
from tracking.models import Event
from tracking.services import append_events, record_event

pytestmark = pytest.mark.django_db(transaction=True)


def associations() -> dict[tuple[str, str], tuple[float, object]]:
    return {(a.item_a, a.item_b): (a.log_key, a.updated) for a in ItemAssociation.objects.all()}


def test_one_event_per_fold_builds_the_associations_of_a_replay(isolated_cache):  # noqa: F811
    """Folded one event per transaction, every pair's earlier item comes from the window read
    back from the log: a rating must weigh there as it did in the batch it arrived in (a
    1-star rating a fifth of a view), and bots' and rapid repeats' events must stay out of it."""
    make_items("w1", "w2", "w3", "w4", "w5", "w6")
    start = timezone.now() - timedelta(hours=3)
    script = [("a", "item_viewed", "w1", {}), ("b", "item_viewed", "w2", {}), ("a", "rated", "w2", {"value": 1}),
              ("b", "rated", "w3", {"value": 4}), ("a", "rated", "w3", {"value": 4.5}), ("a", "item_viewed", "w4", {}),
              ("b", "added_to_cart", "w1", {}), ("a", "not_interested", "w5", {}), ("b", "rated", "w6", {}),
              ("a", "purchased", "w6", {}), ("b", "item_viewed", "w4", {})]
    for n, (visitor, name, item, props) in enumerate(script):
        at = start + timedelta(minutes=7 * n)
        record_event(name, visitor_id=f"co-{visitor}", item_id=item, properties=props, occurred_at=at)
        if n == 5:  # a rapid repeat of that view, then a bot's view under the same visitor id
            record_event(name, visitor_id=f"co-{visitor}", item_id=item, occurred_at=at + timedelta(seconds=1))
            append_events([{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": "w5",
                            "ts": (at + timedelta(minutes=1)).isoformat()}], visitor_id="co-a", is_bot=True)
    assert Event.objects.filter(is_repeat=True).count() == 1 and Event.objects.filter(is_bot=True).count() == 1

    while cooccurrence._apply_batch(1):
        pass
    live = associations()
    assert cooccurrence.rebuild() == len(script) + 2
    replayed = associations()
    assert replayed.keys() == live.keys()
    assert all(abs(replayed[p][0] - live[p][0]) < 1e-9 and replayed[p][1] == live[p][1] for p in replayed)
    assert not any("w5" in pair for pair in live)  # the bot's view and a not-interested form no pair


def test_a_history_longer_than_the_window_reads_back_as_the_replay_holds_it(isolated_cache):  # noqa: F811
    """The window is read back as each visitor's last ``3 x WINDOW_ITEMS`` events before the
    cursor (a backward index scan, not the whole history): with a long history, a revisited
    item and a second visitor interleaved, folding one event at a time still equals a replay."""
    from django.test import override_settings

    items = [f"h{i}" for i in range(14)]
    make_items(*items)
    start = timezone.now() - timedelta(hours=2)
    with override_settings(LIVEREC={"COOCCURRENCE": {"WINDOW_ITEMS": 2}}):  # reads back 6 events
        for n in range(24):
            visitor = "co-long" if n % 3 else "co-other"
            item = items[(n * 5) % len(items)] if n != 20 else items[0]  # n=20: back to the first item
            record_event("item_viewed", visitor_id=visitor, item_id=item, occurred_at=start + timedelta(minutes=n))
        while cooccurrence._apply_batch(1):  # one event per fold, until the log is folded
            pass
        live = associations()
        assert cooccurrence.rebuild() == 24
        replayed = associations()
    assert len(live) > 20 and replayed.keys() == live.keys()
    assert all(abs(replayed[p][0] - live[p][0]) < 1e-9 and replayed[p][1] == live[p][1] for p in replayed)


def test_the_window_read_scans_each_visitor_not_every_event_of_the_window_hours(isolated_cache):  # noqa: F811
    """The fold reads its visitors' windows back from the log. Events newer than the table's
    statistics (any live traffic since the last ANALYZE) are estimated at one row, which once
    led PostgreSQL to read the window hours of the whole log through the time index, once per
    visitor: the plan must go through each visitor's own events."""
    from django.db import connection, transaction

    from recsys.services.vectors import binary_vector_cursor

    visitors = [f"co-plan-{n:02d}" for n in range(30)]
    long_ago = timezone.now() - timedelta(days=400)

    def views(visitor, count, start):
        return [{"id": str(uuid.uuid4()), "name": "item_viewed", "item_id": f"p{(n * 7) % 90}",
                 "ts": (start + timedelta(minutes=n)).isoformat()} for n in range(count)]

    # A long imported history (as MovieLens' ratings), counted in the statistics.
    report = import_rows([ImportRow(n, visitor, f"p{n % 90}", "item_viewed",
                                    (long_ago + timedelta(minutes=n)).isoformat())
                          for visitor in visitors for n in range(200)])
    assert report.accepted == 200 * len(visitors), report
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
    now = timezone.now() - timedelta(minutes=30)
    for visitor in visitors:  # then the live traffic, newer than the statistics know
        assert all(o.status == "accepted" for o in append_events(views(visitor, 20, now), visitor_id=visitor))
    last = Event.objects.order_by("-txid", "-id").values_list("txid", "id").first()
    params = [visitors, str(last[0]), last[1], now - timedelta(hours=24), ["item_viewed", "purchased"], 30]

    def plan():
        with binary_vector_cursor() as db:
            db.execute("EXPLAIN " + cooccurrence.window_sql(), params, binary=True)
            return "\n".join(row[0] for row in db.fetchall())

    def family(index: str) -> set[str]:
        """An index of the (partitioned) event log and its partitions' indexes."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                           "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [index])
            return {index} | {row[0] for row in cursor.fetchall()}

    def scans(found: str, index: str) -> bool:
        return any(f" {name} " in f"{line} " for line in found.splitlines() for name in family(index)
                   if "Index" in line)

    visitor_indexes = ("tracking_ev_visitor_time", "tracking_ev_visitor_log")
    found = plan()
    assert any(scans(found, name) for name in visitor_indexes) and not scans(found, "tracking_ev_time"), found
    # Which plan wins on these small tables depends on the statistics; the real guard is that
    # the window's start cannot use the time index at all, even with the visitor's own indexes
    # gone (dropped in a transaction that is rolled back).
    with transaction.atomic():
        with connection.cursor() as cursor:
            time_indexes = family("tracking_ev_time")
            cursor.execute("DROP INDEX tracking_ev_visitor_time, tracking_ev_visitor_log")
        found = plan()
        transaction.set_rollback(True)
    assert not any(f" {name} " in f"{line} " for line in found.splitlines() for name in time_indexes
                   if "Index" in line), found
    assert Event.objects.filter(visitor_id=visitors[0]).count() == 220
