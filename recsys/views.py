"""Thin HTTP views over the health probes and the engine."""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tracking import ratelimit

from . import health as probes
from .conf import settings
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
    """GET /liverec/recs/<slot>/?k=8&item_id=...&q=...&category=... with the visitor token in
    the ``X-LiveRec-Token`` header (never in the URL: proxies and access logs keep URLs).

    ``item_id``: the item on the page; ``q`` (or ``query``): a search just made; ``category``:
    a category page. The same context as ``recommend()`` and ``{% liverec_widget %}`` take.
    Rate-limited per visitor and per IP (``RECS_RATE_LIMIT_*``): 429 + Retry-After.
    """
    admitted = _admit(request, token_required=True)
    if isinstance(admitted, JsonResponse):
        return admitted
    visitor_id, k = admitted
    context = clean_context({"item_id": request.GET.get("item_id"), "category": request.GET.get("category"),
                             "query": request.GET.get("q") or request.GET.get("query")})
    try:
        recs = recommend(visitor_id, slot, k, context)
    except ImproperlyConfigured as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    serving.record_served(recs, "poll" if request.GET.get("via") == "widget" else "api")
    return JsonResponse(recs.as_dict())


# --- search (recsys.services.search through the "search" slot) ---
@never_cache
@require_GET
def search(request: HttpRequest) -> JsonResponse:
    """GET /liverec/search/?q=...&k=10: the "search" slot for a query.

    With a valid visitor token in the ``X-LiveRec-Token`` header (never in the URL) the results
    are re-ranked by that visitor's interests; without one they are the same for everyone.
    ``q`` is required (1-256 chars).
    """
    # Every new query is embedded: the same limits as the recommendations endpoint.
    admitted = _admit(request, token_required=False)
    if isinstance(admitted, JsonResponse):
        return admitted
    visitor_id, k = admitted
    query = (request.GET.get("q") or "").strip()
    if not query or len(query) > 256:
        return JsonResponse({"error": "q must be a search of 1 to 256 characters"}, status=400)
    recs = recommend(visitor_id, "search", k, {"query": query})
    if visitor_id:
        serving.record_served(recs, "api")
    return JsonResponse({**recs.as_dict(), "query": query})


def _admit(request: HttpRequest, *, token_required: bool) -> tuple[str, int | None] | JsonResponse:
    """The visitor of the ``X-LiveRec-Token`` header ("" without one, where that is allowed) and
    ``k``, or the error response: a token in the URL (400), a bad token (403), over a rate
    limit (429), a bad ``k`` (400)."""
    if "token" in request.GET:
        return JsonResponse({"error": "send the token in the X-LiveRec-Token header, not in the URL"}, status=400)
    token = request.headers.get("X-LiveRec-Token", "")
    visitor_id = ""
    if token or token_required:
        try:
            visitor_id = read_token(token)
        except InvalidToken as exc:
            return JsonResponse({"error": str(exc)}, status=403)
    refused = _over_limit(request, visitor_id)
    if refused is not None:
        return refused
    k = _list_length(request)
    if isinstance(k, JsonResponse):
        return k
    return visitor_id, k


def _over_limit(request: HttpRequest, visitor_id: str) -> JsonResponse | None:
    """429 with Retry-After once the visitor or the client address is over its request limit."""
    verdict = ratelimit.check_limits("recs", [("visitor", visitor_id, settings.RECS_RATE_LIMIT_VISITOR),
                                              ("ip", ratelimit.client_ip(request), settings.RECS_RATE_LIMIT_IP)],
                                     1, count="REQUESTS")
    if verdict.allowed:
        return None
    response = JsonResponse({"error": f"over the {verdict.scope} rate limit of {verdict.limit} requests; "
                                      f"retry in {verdict.retry_after} s", "retry_after": verdict.retry_after},
                            status=429)
    response["Retry-After"] = str(verdict.retry_after)
    return response


def _list_length(request: HttpRequest) -> int | None | JsonResponse:
    """``k`` from the query string (None: the slot's own length), or a 400 naming the range."""
    try:
        k = int(request.GET.get("k", 0)) or None
        if k is not None and not 1 <= k <= 100:
            raise ValueError
    except ValueError:
        return JsonResponse({"error": "k must be an integer from 1 to 100"}, status=400)
    return k
