"""A visitor's right of access and erasure: export everything about them, or forget them.

The log is append-only for everyone else; these are the only services that delete events.
Apps that derive data from the log (recsys: the interest profile) register through
``tracking.hooks.on_export`` / ``on_forget``, so tracking never imports them.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from . import hooks
from .models import Event

EVENT_FIELDS = ("uuid", "name", "item_id", "user_id", "session_id", "properties", "occurred_at", "received_at",
                "source", "is_bot", "is_repeat")


def export_visitor(visitor_id: str) -> dict:
    """Everything stored about a visitor, JSON-serialisable, oldest event first."""
    events = []
    for row in Event.objects.filter(visitor_id=visitor_id).order_by("occurred_at", "id").values(*EVENT_FIELDS):
        row["uuid"] = str(row["uuid"])
        row["occurred_at"] = row["occurred_at"].isoformat()
        row["received_at"] = row["received_at"].isoformat()
        events.append(row)
    return {"visitor_id": visitor_id, "exported_at": timezone.now().isoformat(), "events": events,
            **hooks.export(visitor_id)}


@transaction.atomic
def forget_visitor(visitor_id: str) -> dict:
    """Delete a visitor's events and every projection derived from them, in one transaction."""
    deleted, _ = Event.objects.filter(visitor_id=visitor_id).delete()
    return {"visitor_id": visitor_id, "events": deleted, **hooks.forget(visitor_id)}
