"""The ingest endpoint: thin; validation and storage live in services."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import identity, privacy, ratelimit, safejson, services
from .conf import settings
from .validation import ValidationError


def _origin_allowed(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a cross-site browser request (server, curl, same-origin beacon)
    if origin in settings.ALLOWED_ORIGINS:
        return True
    return urlsplit(origin).netloc == request.get_host()


def _cors(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    origin = request.headers.get("Origin")
    if origin and _origin_allowed(request):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, X-LiveRec-Key"  # never the server key
        response["Access-Control-Max-Age"] = "86400"
        response["Vary"] = "Origin"
    return response


def _error(request: HttpRequest, status: int, message: str, **extra) -> HttpResponse:
    return _cors(JsonResponse({"error": message, **extra}, status=status), request)


# While PostgreSQL is unreachable the tracker keeps its queue and retries after this.
DB_DOWN_RETRY_AFTER_SECONDS = 5


def _database_down_is_503(view):
    """The log is the source of truth: without it, ask the tracker to retry later (503 +
    Retry-After) instead of a 500; its queue and event UUIDs make the retry exactly-once."""
    from functools import wraps

    from django.db import InterfaceError, OperationalError

    def unavailable(request):
        response = _error(request, 503, "the event store is unavailable; retry later")
        response["Retry-After"] = str(DB_DOWN_RETRY_AFTER_SECONDS)
        return response

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        # After a failure, answer at once for a moment instead of having every request wait
        # out the connection pool's timeout (3 s) against a database that is known to be down.
        if time.monotonic() < _db_down_until[0]:
            return unavailable(request)
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError):
            _db_down_until[0] = time.monotonic() + DB_DOWN_SHORT_CIRCUIT_SECONDS
            return unavailable(request)

    return wrapper


DB_DOWN_SHORT_CIRCUIT_SECONDS = 2.0
_db_down_until = [0.0]


@csrf_exempt  # by design: protected by the Origin allow-list and the site key
@_database_down_is_503
def ingest(request: HttpRequest) -> HttpResponse:
    """POST a JSON batch ``{"site_key", "sent_at", "events": [...]}``.

    Answers 200 with one outcome per event (accepted, duplicate, rejected + reason).
    The visitor is the one in the signed visitor cookie (issued with the response when absent).
    A body ``visitor_id`` other than that one, and events' own ``user_id``, need the server
    key (``X-LiveRec-Server-Key``); otherwise the user id is the signed-in Django user's.
    """
    if request.method == "OPTIONS":
        if not _origin_allowed(request):
            return _error(request, 403, "origin not allowed")
        return _cors(HttpResponse(status=204), request)
    if request.method != "POST":
        return _error(request, 405, "use POST")
    if not _origin_allowed(request):
        return _error(request, 403, f"origin {request.headers.get('Origin')!r} is not in LIVEREC_TRACKING['ALLOWED_ORIGINS']")
    length = int(request.headers.get("Content-Length") or 0)
    if length > settings.MAX_BODY_BYTES or len(request.body) > settings.MAX_BODY_BYTES:
        return _error(request, 413, f"body over {settings.MAX_BODY_BYTES} bytes")
    try:
        payload = safejson.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(request, 400, f"malformed JSON: {exc}")
    if not isinstance(payload, dict):
        return _error(request, 400, "body must be a JSON object with an events list")
    key = request.headers.get("X-LiveRec-Key") or payload.get("site_key")
    if settings.SITE_KEY and key != settings.SITE_KEY:
        return _error(request, 403, "missing or wrong site key")
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        return _error(request, 400, "events must be a non-empty list")
    if len(events) > settings.MAX_EVENTS_PER_BATCH:
        return _error(request, 413, f"at most {settings.MAX_EVENTS_PER_BATCH} events per batch")
    user_id = str(request.user.pk) if getattr(request, "user", None) and request.user.is_authenticated else ""
    trusted = identity.has_server_key(request)
    visitor_id = getattr(request, "liverec_visitor_id", "")
    claimed = payload.get("visitor_id")
    if claimed not in (None, "") and claimed != visitor_id:
        if not trusted:
            return _error(request, 403, "visitor_id does not match the signed visitor cookie; leave it out "
                          "(the cookie names the visitor) or send LIVEREC_TRACKING['SERVER_KEY'] as "
                          f"{identity.SERVER_KEY_HEADER} (server-to-server)")
        visitor_id = claimed
    verdict = ratelimit.check(str(visitor_id)[:64], ratelimit.client_ip(request), len(events))
    if not verdict.allowed:
        response = _error(request, 429, f"over the {verdict.scope} rate limit of {verdict.limit} events; "
                          f"retry in {verdict.retry_after} s", retry_after=verdict.retry_after)
        response["Retry-After"] = str(verdict.retry_after)
        if "Access-Control-Allow-Origin" in response:
            response["Access-Control-Expose-Headers"] = "Retry-After"
        return response
    try:
        events = privacy.stamp_client_context(events, request)
        outcomes = services.append_events(events, visitor_id=visitor_id, user_id=user_id, sent_at=payload.get("sent_at"),
                                          user_agent=request.headers.get("User-Agent", ""),
                                          event_user_ids=trusted)
    except ValidationError as exc:
        return _error(request, 400, exc.reason)
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("accepted", "duplicate", "rejected")}
    # Plain dicts, not dataclasses.asdict (its deep copy was ~1 ms a request on bench_ingest).
    body = [{"id": o.id, "status": o.status, "reason": o.reason} for o in outcomes]
    return _cors(JsonResponse({**counts, "events": body}), request)
