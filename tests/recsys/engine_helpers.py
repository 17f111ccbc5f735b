"""Shared set-up for the engine's tests: an isolated cache, events at chosen times, projections."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "liverec-engine-tests"}}


@pytest.fixture
def isolated_cache(monkeypatch):
    """A private cache: trending lists and the config generation never leak between tests
    (and flushing the shared Redis would also drop the stack's broker queues).

    Appends do not enqueue Celery tasks here: these tests run the projections in-process
    (``run_projections``), and the session's real workers, when started, must not fold
    these events while the test database is being flushed (TRUNCATE deadlocks). Nor do the
    folds' own requests (the association fold an in-process ``process_events`` asks for, the
    interest fold ``fold_associations`` asks for): a real batch worker running one of them
    raced a test's replay (``cooccurrence.rebuild`` found the cursor already at the end).
    """
    from django.core.cache import cache

    from recsys.services import cooccurrence, events
    from tracking import hooks

    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [])
    monkeypatch.setattr(cooccurrence, "request_fold", lambda: None)
    monkeypatch.setattr(events, "on_events_appended", lambda event_ids: None)

    from recsys import configcache
    from recsys.strategies import trending

    with override_settings(CACHES=LOCMEM):
        cache.clear()
        # Per-process copies too: each test's database starts empty.
        trending._local.clear()
        configcache.invalidate()
        yield cache


class Timeline:
    """Records events one minute apart, in order, through the real tracking service."""

    def __init__(self, start: datetime | None = None):
        self.t = start or timezone.now() - timedelta(hours=2)

    def record(self, visitor: str, name: str, item_id: str, **props):
        from tracking.services import record_event

        self.t += timedelta(minutes=1)
        return record_event(name, visitor_id=visitor, item_id=item_id, properties=props, occurred_at=self.t)


def run_projections() -> None:
    """What the realtime task does after an append: fold interests, then associations."""
    from recsys.services import cooccurrence, interests

    interests.catch_up()
    cooccurrence.catch_up()


def make_items(*ids: str, **fields):
    from recsys.models import Item

    return [Item.objects.create(item_id=i, title=fields.get("title", "Item {}").format(i),
                                categories=fields.get("categories", [])) for i in ids]
