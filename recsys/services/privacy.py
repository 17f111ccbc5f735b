"""recsys's side of the privacy services: its per-visitor stores, and the rebuild after retention.

Each store recsys keeps per visitor is a ``tracking.privacy.VisitorStore`` registered in
``RecsysConfig.ready`` (``STORES``): the interest profile (vectors, interests, summary), the
sequence model's state (hidden vectors), the served-list log (which lists they were shown),
the visitor's topic shares, the push state in the cache (presence, open slots, sequence,
burst state, cached lists and their signatures) and the pending-summary flag. Forget and
export loop over them (``tracking.privacy``), database stores in the forget's transaction.
Aggregates over many visitors (item co-occurrence counts, item popularity for trending)
hold no visitor id: they are recomputed from the log by ``manage.py recsys_replay``, after
which a forgotten visitor's contribution is gone too. Retention (``on_erased``) rebuilds
profiles from the remaining events; the association and popularity projections are then
rebuilt by a batch task, since they came partly from the deleted events.
"""
from __future__ import annotations

from typing import Any, Sequence

from django.db import transaction
from django.db.models import Q

from tracking import counters
from tracking.models import Event
from tracking.privacy import VisitorStore

from ..models import AuditEntry, ProjectionCursor, RecommendationLog, VisitorProfile, VisitorSequenceState, VisitorTopics
from . import dispatch, interests, projection, push, summaries

# Visitors re-folded per query after retention: bounds the rows read at once.
REFOLD_CHUNK = 500


def _lock_cursor() -> ProjectionCursor:
    """Take the interest projection's cursor lock: a batch in flight finishes first, and no
    new one starts until this transaction ends (so it cannot re-create what is erased)."""
    return projection.lock(interests.CURSOR)


def _profile_dict(p: VisitorProfile) -> dict[str, Any]:
    return {
        "visitor_id": p.visitor_id, "user_id": p.user_id, "event_count": p.event_count,
        "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
        "rate_per_hour": p.rate_per_hour, "summary": p.summary,
        "interests": [{"label": i.get("label", ""), "weight": i.get("weight", 0.0)} for i in p.interests],
        "long_term": None if p.long_term is None else [float(x) for x in p.long_term],
        "short_term": None if p.short_term is None else [float(x) for x in p.short_term],
    }


class ProfileStore(VisitorStore):
    name = "profiles"
    exportable = True

    def forget(self, visitor_id: str) -> int:
        _lock_cursor()  # held until the forget commits: no fold re-creates the profile meanwhile
        return VisitorProfile.objects.filter(visitor_id=visitor_id).delete()[0]

    def export(self, visitor_id: str) -> list[dict[str, Any]]:
        return [_profile_dict(p) for p in VisitorProfile.objects.filter(visitor_id=visitor_id)]


class SequenceStateStore(VisitorStore):
    name = "sequence_states"

    def forget(self, visitor_id: str) -> int:
        _lock_cursor()
        return VisitorSequenceState.objects.filter(visitor_id=visitor_id).delete()[0]


class ServedListStore(VisitorStore):
    name = "served_lists"
    exportable = True

    def forget(self, visitor_id: str) -> int:
        return RecommendationLog.objects.filter(visitor_id=visitor_id).delete()[0]

    def export(self, visitor_id: str) -> list[dict[str, Any]]:
        return [{"rec_id": r.rec_id, "slot": r.slot, "channel": r.channel, "items": list(r.items),
                 "shown_at": r.created_at.isoformat()}
                for r in RecommendationLog.objects.filter(visitor_id=visitor_id).order_by("created_at")]


class TopicStore(VisitorStore):
    name = "topics"
    exportable = True

    def forget(self, visitor_id: str) -> int:
        return VisitorTopics.objects.filter(visitor_id=visitor_id).delete()[0]

    def export(self, visitor_id: str) -> list[dict[str, Any]]:
        return [{"distribution": t.distribution} for t in VisitorTopics.objects.filter(visitor_id=visitor_id)]


class PushStateStore(VisitorStore):
    """Presence, open slots, sequence numbers, burst state, cached lists and pushed signatures."""

    name = "push_state"
    kind = "cache"

    def forget(self, visitor_id: str) -> int:
        return counters.delete_keys("default", push.state_keys(visitor_id), push.state_patterns(visitor_id))


class SummaryFlagStore(VisitorStore):
    """The pending-summary flag (a queued summary then finds no profile and writes nothing)."""

    name = "summary_pending"
    kind = "cache"

    def forget(self, visitor_id: str) -> int:
        return counters.delete_keys("default", [summaries.pending_key(visitor_id)])


class AuditStore(VisitorStore):
    """Admin audit entries that name the visitor (an export): the entry stays, append-only as
    the trail is, but its visitor id gives way to ``FORGOTTEN``, so the trail still says what
    was done and no longer who it was done to."""

    name = "audit_entries"

    def forget(self, visitor_id: str) -> int:
        return AuditEntry.objects.filter(object_repr=visitor_id).update(object_repr=FORGOTTEN, diff={})


# What stands for a forgotten visitor in the audit trail.
FORGOTTEN = "a forgotten visitor"


STORES = (AuditStore, ProfileStore, SequenceStateStore, ServedListStore, TopicStore, PushStateStore, SummaryFlagStore)


def forget(visitor_ids: Sequence[str], user_ids: Sequence[str] = ()) -> dict[str, int]:
    """Erase recsys's stores of these visitors (and of the visitors whose profile names one of
    ``user_ids``); ``tracking.privacy.forget_visitor`` erases the events and every store."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        query = Q(visitor_id__in=list(visitor_ids))
        if user_ids:
            query |= Q(user_id__in=list(user_ids))
        everyone = sorted(set(visitor_ids) | set(VisitorProfile.objects.filter(query).values_list("visitor_id", flat=True)))
        for store in (cls() for cls in STORES):
            if store.kind == "database":
                counts[store.name] = sum(store.forget(v) for v in everyone)
    for store in (cls() for cls in STORES):
        if store.kind == "cache":
            counts[store.name] = sum(store.forget(v) for v in everyone)
    return {f"{name}_deleted": n for name, n in counts.items()}


def refold(visitor_ids: Sequence[str]) -> dict[str, int]:
    """Rebuild these visitors' profiles from their remaining events up to the cursor.

    A visitor's state depends only on their own events in log order, so this equals what
    a full replay would give them; events after the cursor are folded later as usual.
    """
    rebuilt = 0
    with transaction.atomic():
        cursor = _lock_cursor()
        ids = sorted(set(visitor_ids))
        for start in range(0, len(ids), REFOLD_CHUNK):
            chunk = ids[start:start + REFOLD_CHUNK]
            VisitorProfile.objects.filter(visitor_id__in=chunk).delete()
            # Their stored sequence states summarise events that may be gone: drop them (the
            # next fold writes them again; requests meanwhile read the remaining log).
            VisitorSequenceState.objects.filter(visitor_id__in=chunk).delete()
            events = list(Event.objects.raw(
                f"SELECT * FROM {Event._meta.db_table} WHERE visitor_id = ANY(%s) "
                "AND (txid, id) <= (%s::text::xid8, %s) ORDER BY txid, id",
                [chunk, str(cursor.txid), cursor.position]))
            profiles: dict[str, VisitorProfile] = {}
            touched = interests.fold(events, profiles)
            interests._save([profiles[v] for v in touched])
            rebuilt += len(touched)
        if ids:
            transaction.on_commit(_rebuild_associations_later)
    return {"profiles_rebuilt": rebuilt}


def _rebuild_associations_later() -> None:
    try:
        dispatch.task("rebuild_associations").delay()
    except Exception:  # broker down: the next retention sweep (or recsys_replay) rebuilds them
        pass


def on_erased(visitor_ids: Sequence[str], *, user_ids: Sequence[str] = (), reason: str) -> dict[str, int]:
    """The ``tracking.hooks`` "erased" subscriber."""
    if reason == "forget":
        return forget(visitor_ids, user_ids)
    if reason == "retention":
        return refold(visitor_ids)
    raise ValueError(f"unknown erase reason {reason!r}; valid: 'forget', 'retention'")


# Serve-log rows deleted per statement by a retention sweep (bounded transactions).
EXPIRE_CHUNK = 5000


def on_expired(cutoff) -> dict[str, int]:
    """The ``tracking.hooks`` "expired" subscriber: retention deleted the events before
    ``cutoff``, so the lists served before it go too (the serve log names visitors and what
    they were shown; click-through attribution needs no list older than its events)."""
    deleted = 0
    while True:
        ids = list(RecommendationLog.objects.filter(created_at__lt=cutoff).order_by()
                   .values_list("pk", flat=True)[:EXPIRE_CHUNK])
        if not ids:
            return {"served_lists_deleted": deleted}
        deleted += RecommendationLog.objects.filter(pk__in=ids).delete()[0]


def export(visitor_ids: Sequence[str], *, user_ids: Sequence[str] = ()) -> dict[str, Any]:
    """recsys's exportable stores of these visitors (``tracking.privacy.export_visitor`` gives all)."""
    return {store.name: [r for v in sorted(visitor_ids) for r in store.export(v)]
            for store in (cls() for cls in STORES) if store.exportable}
