"""Thin HTTP views over the health probes and the engine."""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health as probes
from .engine import clean_context, recommend
from .services import serving
from .tokens import InvalidToken, read_token


@never_cache
@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    report = await probes.report_async()  # on the server's loop: answers within 2 s, whatever stalls
    return JsonResponse(report, status=200 if report["ok"] else 503)


@never_cache
@require_GET
def recommendations(request: HttpRequest, slot: str) -> JsonResponse:
    """GET /liverec/recs/<slot>/?token=...&k=8&item_id=...&q=...&category=... (token: signed visitor id).

    ``item_id``: the item on the page; ``q`` (or ``query``): a search just made; ``category``:
    a category page. The same context as ``recommend()`` and ``{% liverec_widget %}`` take.
    """
    try:
        visitor_id = read_token(request.GET.get("token") or request.headers.get("X-LiveRec-Token", ""))
    except InvalidToken as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    try:
        k = int(request.GET.get("k", 0)) or None
        if k is not None and not 1 <= k <= 100:
            raise ValueError
    except ValueError:
        return JsonResponse({"error": "k must be an integer from 1 to 100"}, status=400)
    context = clean_context({"item_id": request.GET.get("item_id"), "category": request.GET.get("category"),
                             "query": request.GET.get("q") or request.GET.get("query")})
    try:
        recs = recommend(visitor_id, slot, k, context)
    except ImproperlyConfigured as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    serving.record_served(recs, "poll" if request.GET.get("via") == "widget" else "api")
    return JsonResponse(recs.as_dict())
