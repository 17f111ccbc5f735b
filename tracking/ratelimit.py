"""Per-visitor and per-IP ingest rate limits: fixed windows counted in events.

Counted in events rather than requests so a client cannot dodge the limit with
bigger batches. A refused batch answers 429 with Retry-After = seconds to the end
of the window; the tracker keeps the events queued and re-sends them then.
"""
from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from django.http import HttpRequest

from . import counters
from .cachekeys import visitor_digest
from .conf import settings


@dataclass
class Verdict:
    allowed: bool
    scope: str = ""
    limit: int = 0
    retry_after: int = 0


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    try:
        return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)
    except ValueError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LIVEREC_TRACKING['TRUSTED_PROXIES'] = {list(entries)!r}: {exc}; "
                                   "use addresses or CIDR networks like '10.0.0.0/8'") from exc


def _trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless that is one of ``TRUSTED_PROXIES``; then the
    rightmost address of ``CLIENT_IP_HEADER`` that is not a trusted proxy. Every proxy appends
    the address it saw, so entries left of the last untrusted one are the client's own word
    (rotating them must not rotate the per-IP limit)."""
    remote = request.META.get("REMOTE_ADDR", "")[:64]
    header, proxies = settings.CLIENT_IP_HEADER, _networks(tuple(settings.TRUSTED_PROXIES))
    if not header or not proxies or not _trusted(remote, proxies):
        return remote
    chain = [a.strip() for a in request.headers.get(header, "").split(",") if a.strip()]
    for address in reversed(chain):
        if not _trusted(address, proxies):
            return address[:64]
    return chain[0][:64] if chain else remote


def _pseudonym(ident: str) -> str:
    """The counter key names a keyed hash of the IP or visitor id, never the raw value: the
    client's address is not kept anywhere beyond what IP_STORAGE allows, not even for the
    61 s a counter lives in Redis. Keyed with SECRET_KEY so a key cannot be reversed by
    hashing the IPv4 space."""
    return visitor_digest(ident)


def visitor_pattern(visitor_id: str) -> str:
    """Every per-visitor rate-limit counter of the visitor (one per window), for a forget."""
    return f"lr:rl:visitor:{_pseudonym(visitor_id)}:*"


def check(visitor_id: str, ip: str, n_events: int, now: float | None = None) -> Verdict:
    """Count ``n_events`` against each configured limit; the first one exceeded refuses the batch."""
    return check_limits("rl", [("visitor", visitor_id, settings.RATE_LIMIT_VISITOR),
                               ("ip", ip, settings.RATE_LIMIT_IP)], n_events, count="EVENTS", now=now)


def check_limits(name: str, limits_of: Sequence[tuple[str, str, dict | None]], n: int, *, count: str,
                 now: float | None = None) -> Verdict:
    """Count ``n`` against each (scope, identity, {count: limit, "SECONDS": window}) limit (None:
    off); the first one exceeded refuses. ``name`` keeps one endpoint's counters apart from
    another's (the ingest's "rl", the recommendations endpoint's own)."""
    now = time.time() if now is None else now
    limits = []
    for scope, ident, conf in limits_of:
        if conf and ident:
            seconds = int(conf["SECONDS"])
            window = int(now // seconds)
            limits.append((scope, int(conf[count]), seconds, window,
                           (f"lr:{name}:{scope}:{_pseudonym(ident)}:{window}", n, seconds + 1)))
    totals = counters.incr_many(settings.RATE_LIMIT_CACHE, [entry[-1] for entry in limits])
    if totals is None:
        return Verdict(True)
    for (scope, limit, seconds, window, _), total in zip(limits, totals):
        if total > limit:
            retry = max(1, math.ceil((window + 1) * seconds - now))
            return Verdict(False, scope, limit, retry)
    return Verdict(True)
