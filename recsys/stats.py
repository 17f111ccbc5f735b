"""Reads for the admin dashboard, visitor inspector and experiment reports.

Every breakdown by a small group (slot, strategy, arm, minute) is suppressed when fewer than
``LIVEREC["ADMIN_MIN_GROUP_VISITORS"]`` distinct visitors make it up (k-anonymity): staff
see trends, not what one identifiable visitor did. The per-visitor inspector is the
deliberate exception, behind its own permission.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from tracking.models import Event

from .abtest import assign, wilson_interval
from .conf import settings
from .models import Experiment, Item, VisitorProfile

SHOWN, CLICKED = "recommendation_shown", "recommendation_clicked"
QUEUES = ("liverec.realtime", "liverec.batch")


def k_threshold() -> int:
    return int(settings.ADMIN_MIN_GROUP_VISITORS)


def events_per_minute(minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per minute of the last ``minutes``: events and distinct visitors (suppressed if few)."""
    now = now or timezone.now()
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('minute', occurred_at) AS m, count(*), count(DISTINCT visitor_id) "
            f"FROM {Event._meta.db_table} WHERE occurred_at >= %s AND NOT is_bot GROUP BY m",
            [start])
        found = {m: (n, v) for m, n, v in cursor.fetchall()}
    k = k_threshold()
    rows = []
    for i in range(minutes):
        m = start + timedelta(minutes=i)
        n, v = found.get(m, (0, 0))
        suppressed = 0 < v < k
        rows.append({"minute": m, "events": None if suppressed else n, "visitors": v, "suppressed": suppressed})
    return rows


def events_since(since: datetime) -> int:
    """All (non-bot) events since ``since``: a site-wide total, not a small group."""
    return Event.objects.filter(occurred_at__gte=since, is_bot=False).count()


def active_visitors(minutes: int = 5) -> int:
    since = timezone.now() - timedelta(minutes=minutes)
    return Event.objects.filter(occurred_at__gte=since, is_bot=False).values("visitor_id").distinct().count()


def recommendation_metrics(since: datetime) -> list[dict[str, Any]]:
    """Impressions, clicks and click-through per (slot, strategy) from the widgets' events.

    Events ``recommendation_shown`` / ``recommendation_clicked`` carry ``slot`` (and, when the
    widget knows it, ``strategy``) in their properties.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(properties->>'slot', ''), coalesce(properties->>'strategy', ''), "
            f"count(*) FILTER (WHERE name = %s), count(*) FILTER (WHERE name = %s), count(DISTINCT visitor_id) "
            f"FROM {Event._meta.db_table} WHERE name IN (%s, %s) AND occurred_at >= %s AND NOT is_bot "
            f"GROUP BY 1, 2 ORDER BY 1, 2",
            [SHOWN, CLICKED, SHOWN, CLICKED, since])
        rows = cursor.fetchall()
    k = k_threshold()
    out = []
    for slot, strategy, shown, clicked, visitors in rows:
        row = {"slot": slot or "(none)", "strategy": strategy or "(all)", "visitors": visitors,
               "suppressed": visitors < k}
        if not row["suppressed"]:
            low, high = wilson_interval(min(clicked, shown), shown) if shown else (0.0, 0.0)
            row.update(impressions=shown, clicks=clicked, ctr=(clicked / shown) if shown else None, low=low, high=high)
        out.append(row)
    return out


def catalogue_coverage(since: datetime) -> dict[str, Any]:
    """How much of the catalogue is embedded (recommendable) and how much got engagement."""
    available = Item.objects.filter(available=True).count()
    embedded = Item.objects.filter(available=True, embedding__isnull=False).count()
    engaged = (Event.objects.filter(occurred_at__gte=since, is_bot=False).exclude(item_id="")
               .values("item_id").distinct().count())
    clicked = (Event.objects.filter(occurred_at__gte=since, name=CLICKED).exclude(item_id="")
               .values("item_id").distinct().count())
    share = (lambda n: (n / available) if available else 0.0)
    return {"available": available, "embedded": embedded, "embedded_share": share(embedded),
            "engaged": engaged, "engaged_share": share(engaged), "clicked": clicked, "clicked_share": share(clicked)}


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis LLEN); None when the broker is unreachable."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as conn:
            client = conn.default_channel.client
            return {q: int(client.llen(q)) for q in QUEUES}
    except Exception:  # the dashboard must render when the broker is down: that is what it shows
        return {q: None for q in QUEUES}


PUSH_LATENCY_KEY = "liverec:metrics:push_latency_ms"


def push_latency() -> dict[str, Any]:
    """Percentiles of recent push latencies, if the push service records samples under
    ``PUSH_LATENCY_KEY`` (a Redis list of milliseconds, newest first)."""
    from celery import current_app

    try:
        with current_app.connection_for_read() as conn:
            raw = conn.default_channel.client.lrange(PUSH_LATENCY_KEY, 0, 9999)
    except Exception:
        raw = []
    samples = sorted(float(x) for x in raw)
    if not samples:
        return {"count": 0}
    pick = (lambda q: samples[min(len(samples) - 1, int(q * len(samples)))])
    return {"count": len(samples), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": samples[-1]}


def event_names(since: datetime) -> list[tuple[str, int]]:
    rows = (Event.objects.filter(occurred_at__gte=since, is_bot=False).values("name").annotate(n=Count("id"))
            .order_by("-n")[:20])
    return [(r["name"], r["n"]) for r in rows]


# --- Experiments ------------------------------------------------------------------------------


def experiment_report(exp: Experiment) -> list[dict[str, Any]]:
    """Per arm: visitors, impressions, clicks, click-through and its 95% Wilson interval.

    Visitors are re-assigned by the same hash the engine uses, so no assignment is stored.
    """
    per_visitor: dict[str, list[int]] = {}
    if exp.started_at is not None:
        qs = Event.objects.filter(name__in=(SHOWN, CLICKED), properties__slot=exp.slot, is_bot=False,
                                  occurred_at__gte=exp.started_at)
        if exp.stopped_at is not None:
            qs = qs.filter(occurred_at__lte=exp.stopped_at)
        for vid, name, n in qs.values_list("visitor_id", "name").annotate(n=Count("id")):
            counts = per_visitor.setdefault(vid, [0, 0])
            counts[0 if name == SHOWN else 1] += n
    arms = {a["name"]: {"arm": a, "visitors": 0, "impressions": 0, "clicks": 0} for a in exp.arms}
    for vid, (shown, clicked) in per_visitor.items():
        row = arms[assign(exp.pk, vid, exp.arms)["name"]]
        row["visitors"] += 1
        row["impressions"] += shown
        row["clicks"] += clicked
    k = k_threshold()
    out = []
    for name, row in arms.items():
        row["name"] = name
        row["suppressed"] = 0 < row["visitors"] < k
        shown, clicked = row["impressions"], min(row["clicks"], row["impressions"])
        row["ctr"] = clicked / shown if shown else None
        row["low"], row["high"] = wilson_interval(clicked, shown) if shown else (0.0, 0.0)
        if row["suppressed"]:
            for key in ("impressions", "clicks", "ctr", "low", "high"):
                row[key] = None
        out.append(row)
    return out


# --- Visitor inspector -------------------------------------------------------------------------


def visitor_timeline(visitor_id: str, limit: int = 200) -> list[dict[str, Any]]:
    events = list(Event.objects.filter(visitor_id=visitor_id).order_by("-occurred_at", "-id")
                  .values("id", "name", "item_id", "session_id", "properties", "occurred_at", "source", "is_bot",
                          "is_repeat")[:limit])
    titles = dict(Item.objects.filter(item_id__in={e["item_id"] for e in events if e["item_id"]})
                  .values_list("item_id", "title"))
    for e in events:
        e["title"] = titles.get(e["item_id"], "")
    return events


def visitor_interests(profile: VisitorProfile) -> list[dict[str, Any]]:
    """Interest centroids with labels, weights and share of the total, heaviest first."""
    total = sum(max(0.0, float(i.get("weight", 0))) for i in profile.interests) or 1.0
    rows = [{"index": n, "label": i.get("label") or f"interest {n + 1}", "weight": float(i.get("weight", 0)),
             "share": max(0.0, float(i.get("weight", 0))) / total} for n, i in enumerate(profile.interests)]
    return sorted(rows, key=lambda r: -r["weight"])


def visitor_topics(visitor_id: str, limit: int = 12) -> list[tuple[str, int]]:
    """Categories of the items a visitor engaged with (the topic distribution)."""
    item_ids = list(Event.objects.filter(visitor_id=visitor_id, is_bot=False).exclude(item_id="")
                    .values_list("item_id", flat=True)[:5000])
    per_item = Counter(item_ids)
    topics: Counter = Counter()
    for item_id, cats in Item.objects.filter(item_id__in=per_item).values_list("item_id", "categories"):
        for cat in cats:
            topics[cat] += per_item[item_id]
    return topics.most_common(limit)


def find_visitors(query: str = "", limit: int = 50) -> list[VisitorProfile]:
    qs = VisitorProfile.objects.defer("long_term", "short_term").order_by("-last_event_at")
    if query:
        qs = qs.filter(visitor_id__icontains=query) | qs.filter(user_id__icontains=query)
    return list(qs[:limit])
