"""recsys's part of a visitor's export and erasure (registered with tracking.hooks in ready())."""
from __future__ import annotations

from ..models import VisitorProfile


def export_profile(visitor_id: str) -> dict:
    p = VisitorProfile.objects.filter(visitor_id=visitor_id).first()
    if p is None:
        return {"profile": None}
    return {"profile": {
        "user_id": p.user_id, "event_count": p.event_count, "rate_per_hour": p.rate_per_hour,
        "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None, "summary": p.summary,
        "interests": [{"label": i.get("label", ""), "weight": i.get("weight", 0.0)} for i in p.interests],
    }}


def forget_profile(visitor_id: str) -> dict:
    deleted, _ = VisitorProfile.objects.filter(visitor_id=visitor_id).delete()
    return {"profiles": deleted}
