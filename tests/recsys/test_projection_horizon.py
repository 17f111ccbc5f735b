"""The projections' stable horizon against real concurrent PostgreSQL transactions.

A fold reads only events below the oldest running transaction, so it never skips an
event that commits later with a smaller id. These tests pin the two consequences that
once made CI flaky: a fold waiting on another projector's cursor lock must not be held
back by that projector, and ``catch_up()`` keeps its promise ("everything committed
before the call") while an unrelated transaction is briefly in flight.
"""
from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from recsys.models import VisitorProfile
from recsys.services import interests, projection
from tracking.services import record_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def projection_driven_by_the_test(monkeypatch):
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])  # the live workers must not fold these events


def in_other_transaction(body, hold: threading.Event) -> threading.Thread:
    """Run ``body`` in a transaction on its own connection and keep it open until ``hold`` is set.
    Join the returned thread to know the transaction has ended (committed, or rolled back)."""
    started = threading.Event()

    def run():
        try:
            with transaction.atomic():
                body()
                started.set()
                hold.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    return thread


def visitors() -> set[str]:
    return set(VisitorProfile.objects.values_list("visitor_id", flat=True))


def test_a_fold_waiting_on_another_projector_is_not_held_back_by_it(embedded_catalogue):
    record_event("item_viewed", visitor_id="visitor-hz-first", item_id="1")
    interests.catch_up()
    release = threading.Event()
    # Another worker mid-fold: it holds the projection's lock and, having written, a transaction id.
    def mid_fold():
        projection.lock(interests.CURSOR)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")

    in_other_transaction(mid_fold, release)
    record_event("item_viewed", visitor_id="visitor-hz-during", item_id="6")  # a newer transaction id
    threading.Timer(0.3, release.set).start()

    interests.catch_up(settle=0)  # blocks on the lock; no settling: the lock order alone must do it

    assert visitors() == {"visitor-hz-first", "visitor-hz-during"}


def test_catch_up_waits_out_a_short_unrelated_transaction(embedded_catalogue):
    release = threading.Event()

    def take_a_transaction_id():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")

    in_other_transaction(take_a_transaction_id, release)
    record_event("item_viewed", visitor_id="visitor-hz-later", item_id="2")  # committed, above the horizon

    assert interests.catch_up(settle=0) == set()  # the realtime path: the horizon holds it back
    threading.Timer(0.3, release.set).start()
    assert interests.catch_up() == {"visitor-hz-later"}  # the promise: committed before the call
    assert visitors() == {"visitor-hz-later"}


def test_a_projection_takes_no_transaction_id_until_it_writes(embedded_catalogue):
    """Its lock is an advisory one: a row lock would give the fold a transaction id at once,
    holding back every projection's horizon (the other projection's too) for the whole fold."""
    record_event("item_viewed", visitor_id="visitor-hz-xid", item_id="1")
    interests.catch_up()  # the cursor row exists from here on (its creation is a write)
    with transaction.atomic():
        projection.next_batch(interests.CURSOR, 10)  # lock, cursor, horizon, events
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            assert cursor.fetchone()[0] is None


def test_a_derived_write_in_flight_does_not_hold_back_the_folds(embedded_catalogue):
    """A transaction that declared it never appends (``projection.derived_write``: the
    association fold, the serve log) leaves the horizon alone while it writes: an event
    committed meanwhile is folded at once, not after it ends."""
    from tracking import selectors as log

    release = threading.Event()
    derived = []

    def deriving():
        projection.derived_write()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")  # it has written: an id
            derived.append(cursor.fetchone()[0])

    in_other_transaction(deriving, release)
    try:
        record_event("item_viewed", visitor_id="visitor-hz-derived", item_id="3")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            xmax = cursor.fetchone()[0]
        # Nothing running counts. At least xmax, not equal to it: any other transaction of the
        # cluster (a worker of an earlier test) may take an id between the two reads (CI saw
        # xmax + 1); held back by the derived write it would be at most its id, below xmax.
        assert derived[0] < xmax <= log.stable_horizon()
        assert interests.catch_up(settle=0) == {"visitor-hz-derived"}
    finally:
        release.set()


def test_a_derived_write_inside_a_callers_transaction_declares_nothing(embedded_catalogue):
    """Inside a caller's transaction (a view under ATOMIC_REQUESTS that recorded an event and
    renders a widget, which logs what it served) the declaration would cover the caller's
    event: ``derived_write`` then does nothing, and that transaction holds the horizon back."""
    from tracking import selectors as log

    release = threading.Event()

    def request():
        record_event("purchased", visitor_id="visitor-hz-caller", item_id="4")
        with transaction.atomic():  # the serve log's own block, nested
            projection.derived_write()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit'), pg_current_xact_id()::text::bigint")
            assert cursor.fetchone()[0] == "on"

    caller = in_other_transaction(request, release)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            oldest = cursor.fetchone()[0]
        assert log.stable_horizon() == oldest
    finally:
        release.set()
    caller.join(10)  # its commit, before the fold reads the log
    assert interests.catch_up() == {"visitor-hz-caller"}
