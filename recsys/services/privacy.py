"""recsys's side of the privacy services: erase or rebuild what was derived from deleted events.

Subscribed to ``tracking.hooks`` "erased" and export lists in ``RecsysConfig.ready``. Runs in
the caller's transaction (``tracking.privacy``), so events and their projections go together.

What is keyed by visitor is erased here: the interest profile (vectors, interests, summary),
the sequence model's state (hidden vectors),
the served-list log (which lists they were shown) and the push state in the cache (presence,
open slots, sequence, burst state). Aggregates over many visitors (item co-occurrence counts,
item popularity for trending) hold no visitor id: they are recomputed from the log by
``manage.py recsys_replay``, after which a forgotten visitor's contribution is gone too.
After retention the association and popularity projections are rebuilt by a batch task,
since they came partly from the deleted events.
"""
from __future__ import annotations

from typing import Any, Sequence

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from tracking.models import Event

from ..models import ProjectionCursor, RecommendationLog, VisitorProfile, VisitorSequenceState
from . import dispatch, interests, projection, push

# Visitors re-folded per query after retention: bounds the rows read at once.
REFOLD_CHUNK = 500


def _lock_cursor() -> ProjectionCursor:
    """Take the interest projection's cursor lock: a batch in flight finishes first, and no
    new one starts until this transaction ends (so it cannot re-create what is erased)."""
    return projection.lock(interests.CURSOR)


# Every per-visitor cache key recsys.services.push keeps.
PUSH_STATE_KINDS = ("online", "slots", "seq", "last", "trail")


def _push_state_keys(visitor_id: str) -> list[str]:
    return [push._key(kind, visitor_id) for kind in PUSH_STATE_KINDS]


def forget(visitor_ids: Sequence[str], user_ids: Sequence[str] = ()) -> dict[str, int]:
    with transaction.atomic():
        _lock_cursor()
        query = Q(visitor_id__in=list(visitor_ids))
        if user_ids:
            query |= Q(user_id__in=list(user_ids))
        profiles = VisitorProfile.objects.filter(query)
        all_visitors = set(visitor_ids) | set(profiles.values_list("visitor_id", flat=True))
        deleted, _ = profiles.delete()
        VisitorSequenceState.objects.filter(visitor_id__in=sorted(all_visitors)).delete()
        served, _ = RecommendationLog.objects.filter(visitor_id__in=sorted(all_visitors)).delete()
    keys = [k for vid in sorted(all_visitors) for k in _push_state_keys(vid)]
    try:
        cache.delete_many(keys)
    except Exception:  # the cache only holds ids and hashes of lists; it expires within the hour
        keys = []
    return {"profiles_deleted": deleted, "served_lists_deleted": served, "cache_keys_deleted": len(keys)}


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
    """The visitors' derived state, JSON-serialisable (the ``tracking.hooks`` exporter)."""
    query = Q(visitor_id__in=list(visitor_ids))
    if user_ids:
        query |= Q(user_id__in=list(user_ids))
    profiles = []
    for p in VisitorProfile.objects.filter(query).order_by("visitor_id"):
        profiles.append({
            "visitor_id": p.visitor_id, "user_id": p.user_id, "event_count": p.event_count,
            "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
            "rate_per_hour": p.rate_per_hour, "summary": p.summary,
            "interests": [{"label": i.get("label", ""), "weight": i.get("weight", 0.0)} for i in p.interests],
            "long_term": None if p.long_term is None else [float(x) for x in p.long_term],
            "short_term": None if p.short_term is None else [float(x) for x in p.short_term],
        })
    served = [{"rec_id": r.rec_id, "slot": r.slot, "channel": r.channel, "items": list(r.items),
               "shown_at": r.created_at.isoformat()}
              for r in RecommendationLog.objects.filter(visitor_id__in=[p["visitor_id"] for p in profiles]
                                                        + list(visitor_ids)).order_by("created_at")]
    return {"profiles": profiles, "served_lists": served}
