"""What fills a list the strategies left short: never an empty widget.

The chain, each tier only for what the tiers before it left: trending (the popularity
projection's recent window), popular over the whole history, then the newest items, then
catalogue order (the tie-break of the newest when nothing is newer). The last tier is the
catalogue itself, so a fresh install with zero events still fills a list. Every item carries
the reason of the tier that gave it: "Popular right now", "Popular on this site", "New this
week" (only for an item added within ``LIVEREC["FALLBACK"]["NEW_DAYS"]`` to a catalogue older
than that), else "From our catalogue".

Read only when a list is short (a new visitor, a new site, a narrow filter): three indexed
reads, none of them on the hot path of a visitor the strategies can answer.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from . import reasons
from .conf import settings
from .models import Item, ItemPopularity
from .strategies.base import Candidate, Reason
from .strategies.trending import trending_scores

# Ids read per ranked tier: enough to survive the visitor's exclusions and the slot's filters.
MAX_FETCH = 1024
# The catalogue's first item date changes only when items are deleted: read once a minute.
_FIRST_SECONDS = 60.0
_first: tuple[float, datetime | None] = (0.0, None)


def _catalogue_started() -> datetime | None:
    global _first
    if time.monotonic() - _first[0] < _FIRST_SECONDS:
        return _first[1]
    started = Item.objects.order_by("created_at").values_list("created_at", flat=True).first()
    _first = (time.monotonic(), started)
    return started


def is_new(created_at: datetime | None, now: datetime) -> bool:
    """Added within NEW_DAYS, to a catalogue that existed at least a day before it (the items
    of a first import are not "new": they are the catalogue)."""
    if created_at is None:
        return False
    days = float(settings.FALLBACK.get("NEW_DAYS", 7))
    started = _catalogue_started()
    return (now - created_at <= timedelta(days=days) and started is not None
            and created_at - started > timedelta(days=1))


def _popular_all_time(limit: int) -> list[str]:
    return list(ItemPopularity.objects.order_by("-log_key", "item_id").values_list("item_id", flat=True)[:limit])


def _trending(limit: int) -> list[str]:
    return [item_id for item_id, _ in trending_scores(float(settings.TRENDING["HALF_LIFE_HOURS"]), 30, limit)]


def _passing(ids: list[str], filters: dict[str, Any], exclude: set[str]) -> list[str]:
    """``ids`` (in order) of items that exist, pass the slot's filters and are not excluded."""
    ids = [i for i in dict.fromkeys(ids) if i not in exclude]
    if not ids:
        return []
    qs = Item.objects.filter(item_id__in=ids)
    if filters.get("available", True):
        qs = qs.filter(available=True)
    if filters.get("categories"):
        qs = qs.filter(categories__overlap=list(filters["categories"]))
    ok = set(qs.values_list("item_id", flat=True))
    return [i for i in ids if i in ok]


def _newest(limit: int, filters: dict[str, Any], exclude: set[str]) -> list[tuple[str, datetime]]:
    where, params = [], []
    if filters.get("available", True):
        where.append("available")
    if filters.get("categories"):
        where.append("categories && %s::varchar(64)[]")
        params.append(list(filters["categories"]))
    where.append("item_id <> ALL(%s::text[])")
    params.append(list(exclude))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT item_id, created_at FROM {Item._meta.db_table} WHERE {' AND '.join(where)} "
                       f"ORDER BY created_at DESC, id LIMIT %s", [*params, limit])
        return cursor.fetchall()


def candidates(n: int, exclude: set[str], filters: dict[str, Any], *, below: float = 1.0,
               now: datetime | None = None) -> list[Candidate]:
    """Up to ``n`` items not in ``exclude`` that pass ``filters``, from the chain above, scored
    in chain order and under ``below`` (the weakest score of the list they complete), so
    they follow whatever the strategies found."""
    if n <= 0:
        return []
    now = now or timezone.now()
    category = (filters.get("categories") or [""])[0] if len(filters.get("categories") or []) == 1 else ""
    fetch = min(MAX_FETCH, n + len(exclude))
    taken: set[str] = set(exclude)
    picked: list[tuple[str, str, list[dict[str, Any]]]] = []

    def take(ids: list[str], kind: str, evidence: list[dict[str, Any]]) -> None:
        for item_id in ids:
            if len(picked) >= n:
                return
            if item_id not in taken:
                taken.add(item_id)
                picked.append((item_id, kind, evidence))

    scope = category or "site"
    take(_passing(_trending(fetch), filters, taken), "trending_in" if category else "trending",
         [{"kind": "popularity", "scope": scope, "window": "trending"}])
    if len(picked) < n:
        take(_passing(_popular_all_time(fetch), filters, taken), "popular_in" if category else "popular",
             [{"kind": "popularity", "scope": scope, "window": "all-time"}])
    if len(picked) < n:
        for item_id, created_at in _newest(n - len(picked), filters, taken):
            new = is_new(created_at, now)
            take([item_id], "new" if new else "catalogue",
                 [{"kind": "catalogue", "new": new, "added": created_at.isoformat() if created_at else None}])
    step = below / (len(picked) + 1)
    out = []
    for rank, (item_id, kind, evidence) in enumerate(picked):
        text = reasons.render(kind, {"category": category})
        out.append(Candidate(item_id, below - step * (rank + 1),
                             [Reason("fallback/" + kind.replace("_", "-"), text, kind=kind, evidence=evidence)]))
    return out
