"""The visitor inspector: timeline, interests, summary, topics, live recommendations; export, forget."""
from __future__ import annotations

import json
import re

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tracking import privacy
from tracking.models import Event

from ..engine import recommend
from ..models import VisitorProfile
from ..services import audit, publishing
from ..services import privacy as recsys_privacy
from ..stats import find_visitors, visitor_interests, visitor_timeline, visitor_topics
from .base import EXPORT_VISITOR, FORGET_VISITOR, VIEW_VISITORS, render, requires, username
from .charts import hbar_chart


@requires(VIEW_VISITORS)
def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    return render(request, "admin/recsys/visitors/search.html", {"q": q, "visitors": find_visitors(q)},
                  "Visitor inspector")


@requires(VIEW_VISITORS)
def inspect(request: HttpRequest, visitor_id: str) -> HttpResponse:
    profile = VisitorProfile.objects.filter(visitor_id=visitor_id).defer("long_term", "short_term").first()
    timeline = visitor_timeline(visitor_id)
    if profile is None and not timeline:
        raise Http404("no such visitor (or forgotten)")
    interests = visitor_interests(profile) if profile else []
    topics = visitor_topics(visitor_id)
    total = sum(n for _, n in topics) or 1
    recs = []
    for slot in publishing.slot_names():
        try:
            recs.append({"slot": slot, "items": recommend(visitor_id, slot).items})
        except ImproperlyConfigured as exc:
            recs.append({"slot": slot, "items": [], "error": str(exc)})
    ctx = {"visitor_id": visitor_id, "profile": profile, "timeline": timeline, "interests": interests,
           "interest_chart": hbar_chart([(i["label"], i["share"]) for i in interests], title="Interest weights"),
           "topic_chart": hbar_chart([(t, n / total) for t, n in topics], title="Topic distribution"),
           "recs": recs, "can_export": request.user.has_perm(EXPORT_VISITOR),
           "can_forget": request.user.has_perm(FORGET_VISITOR),
           "event_total": Event.objects.filter(visitor_id=visitor_id).count()}
    return render(request, "admin/recsys/visitors/inspect.html", ctx, f"Visitor {visitor_id}")


@require_POST
@requires(EXPORT_VISITOR)
def export(request: HttpRequest, visitor_id: str) -> HttpResponse:
    data = privacy.export_visitor(visitor_id)
    audit.record(username(request), "export_visitor", visitor_id, {"events": len(data.get("events", []))})
    response = HttpResponse(json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json")
    # Only safe characters in the header: an id from before ids were matched in full may end
    # in a newline, which Django refuses in a header (a 500 BadHeaderError).
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", visitor_id)[:64]
    response["Content-Disposition"] = content_disposition_header(True, f"visitor-{safe}.json")
    return response


@require_POST
@requires(FORGET_VISITOR)
def forget(request: HttpRequest, visitor_id: str) -> HttpResponse:
    if request.POST.get("confirm") != visitor_id:
        messages.error(request, "Type the visitor id to confirm forgetting them.")
        return redirect(reverse("admin:recsys_visitor", args=[visitor_id]))
    result = privacy.forget_visitor(visitor_id)
    # The trail keeps the erasure, not the id it erased.
    audit.record(username(request), "forget_visitor", recsys_privacy.FORGOTTEN,
                 {k: v for k, v in result.items() if k not in ("visitor_ids", "user_ids")})
    messages.success(request, f"Forgot visitor {visitor_id}: {result.get('events_deleted', 0)} events deleted.")
    return redirect(reverse("admin:recsys_visitors"))
