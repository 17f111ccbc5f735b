"""Per-visitor and per-IP ingest rate limits: fixed windows counted in events.

Counted in events rather than requests so a client cannot dodge the limit with
bigger batches. A refused batch answers 429 with Retry-After = seconds to the end
of the window; the tracker keeps the events queued and re-sends them then.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.http import HttpRequest

from . import counters
from .conf import settings


@dataclass
class Verdict:
    allowed: bool
    scope: str = ""
    limit: int = 0
    retry_after: int = 0


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the first address of ``CLIENT_IP_HEADER`` behind a trusted proxy."""
    header = settings.CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def _pseudonym(ident: str) -> str:
    """The counter key names a keyed hash of the IP or visitor id, never the raw value: the
    client's address is not kept anywhere beyond what IP_STORAGE allows, not even for the
    61 s a counter lives in Redis. Keyed with SECRET_KEY so a key cannot be reversed by
    hashing the IPv4 space."""
    from .cachekeys import visitor_digest

    return visitor_digest(ident)


def visitor_pattern(visitor_id: str) -> str:
    """Every per-visitor rate-limit counter of the visitor (one per window), for a forget."""
    return f"lr:rl:visitor:{_pseudonym(visitor_id)}:*"


def check(visitor_id: str, ip: str, n_events: int, now: float | None = None) -> Verdict:
    """Count ``n_events`` against each configured limit; the first one exceeded refuses the batch."""
    now = time.time() if now is None else now
    limits = []
    for scope, ident, conf in (("visitor", visitor_id, settings.RATE_LIMIT_VISITOR),
                               ("ip", ip, settings.RATE_LIMIT_IP)):
        if conf and ident:
            seconds = int(conf["SECONDS"])
            window = int(now // seconds)
            limits.append((scope, int(conf["EVENTS"]), seconds, window,
                           (f"lr:rl:{scope}:{_pseudonym(ident)}:{window}", n_events, seconds + 1)))
    totals = counters.incr_many(settings.RATE_LIMIT_CACHE, [entry[-1] for entry in limits])
    if totals is None:
        return Verdict(True)
    for (scope, limit, seconds, window, _), total in zip(limits, totals):
        if total > limit:
            retry = max(1, math.ceil((window + 1) * seconds - now))
            return Verdict(False, scope, limit, retry)
    return Verdict(True)
