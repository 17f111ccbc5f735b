"""Click-through by slot and strategy: impressions and clicks joined to the serve log by rec id."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from tracking.models import Event

from .models import RecommendationLog

SHOWN, CLICKED = "recommendation_shown", "recommendation_clicked"
# Serve-log rows fetched per query while joining (rec ids are 32-char keys).
LOOKUP_BATCH = 2000


def click_through(since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Rows ``{"slot", "strategy", "impressions", "clicks", "ctr"}``, busiest first.

    An impression is one item of a list reported on screen (each list counts once, however
    often the widget reports it); a click is one (list, item) pair. An item that several
    strategies proposed credits each of them (multi-touch), so strategy rows of a slot can
    sum to more than the slot's impressions. Events whose rec id is not in the serve log
    (expired, forged) are ignored.
    """
    qs = Event.objects.filter(name__in=(SHOWN, CLICKED))
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    shown: dict[str, list[str] | None] = {}
    clicks: set[tuple[str, str]] = set()
    for name, item_id, props in qs.values_list("name", "item_id", "properties").iterator(chunk_size=5000):
        rec_id = str((props or {}).get("rec_id") or "")[:32]
        if not rec_id:
            continue
        if name == SHOWN:
            items = props.get("items")
            shown.setdefault(rec_id, [str(i) for i in items] if isinstance(items, list) else None)
        elif item_id or props.get("item_id"):
            clicks.add((rec_id, str(item_id or props.get("item_id"))))
    rec_ids = sorted(set(shown) | {r for r, _ in clicks})
    logs: dict[str, RecommendationLog] = {}
    for i in range(0, len(rec_ids), LOOKUP_BATCH):
        for log in RecommendationLog.objects.filter(rec_id__in=rec_ids[i:i + LOOKUP_BATCH]).only("rec_id", "slot", "items", "strategies"):
            logs[log.rec_id] = log
    stats: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"impressions": 0, "clicks": 0})

    def credit(log: RecommendationLog, item_id: str, what: str) -> None:
        for strategy in log.strategies.get(item_id) or ["(unattributed)"]:
            stats[(log.slot, strategy)][what] += 1

    for rec_id, items in shown.items():
        log = logs.get(rec_id)
        if log is None:
            continue
        for item_id in (i for i in (items or log.items) if i in log.strategies):
            credit(log, item_id, "impressions")
    for rec_id, item_id in clicks:
        log = logs.get(rec_id)
        if log is not None and item_id in log.strategies:
            credit(log, item_id, "clicks")
    rows = [{"slot": slot, "strategy": sid, **v, "ctr": round(v["clicks"] / v["impressions"], 4) if v["impressions"] else None}
            for (slot, sid), v in stats.items()]
    return sorted(rows, key=lambda r: (-r["impressions"], r["slot"], r["strategy"]))
