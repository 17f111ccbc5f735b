"""The dashboard: traffic, recommendation performance, coverage, push latency, queues."""
from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .. import stats
from ..models import AuditEntry
from .base import VIEW_DASHBOARD, render, requires
from .charts import bar_chart, hbar_chart

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@requires(VIEW_DASHBOARD)
def dashboard(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "24h")
    since = timezone.now() - WINDOWS.get(window, WINDOWS["24h"])
    per_minute = stats.events_per_minute(60)
    metrics = stats.recommendation_metrics(since)
    coverage = stats.catalogue_coverage(since)
    ctx = {
        "window": window, "windows": list(WINDOWS), "k": stats.k_threshold(),
        "events_chart": bar_chart([(r["minute"].strftime("%H:%M"), r["events"]) for r in per_minute],
                                  title="Events per minute (last hour)", label_every=10, fmt="{:.0f}"),
        "events_last_hour": stats.events_since(timezone.now() - timedelta(hours=1)),
        "suppressed_minutes": sum(r["suppressed"] for r in per_minute),
        "active_5m": stats.active_visitors(5), "active_60m": stats.active_visitors(60),
        "metrics": metrics,
        "ctr_chart": hbar_chart([(f"{m['slot']} · {m['strategy']}", m["ctr"]) for m in metrics
                                 if not m["suppressed"] and m["ctr"] is not None], title="Click-through by slot",
                                fmt="{:.1%}"),
        "coverage": coverage,
        "coverage_chart": hbar_chart([("embedded", coverage["embedded_share"]), ("engaged", coverage["engaged_share"]),
                                      ("clicked in a widget", coverage["clicked_share"])], title="Catalogue coverage"),
        "latency": stats.push_latency(), "latency_key": stats.PUSH_LATENCY_KEY,
        "queues": stats.queue_depths(),
        "event_names": stats.event_names(since),
        "audit": AuditEntry.objects.all()[:10],
    }
    return render(request, "admin/recsys/dashboard.html", ctx, "LiveRec dashboard")
