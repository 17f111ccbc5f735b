"""Bot and abuse filtering at append time: a verdict stored on each row (``is_bot``).

The raw log keeps every row; projections skip flagged ones. Two signals:
known crawler/automation user agents, and inhuman rates (more events from one
visitor arriving inside a short window of *server* time than a person produces). Rates
are bucketed by arrival, never by the client's ``ts``: a client chooses its timestamps,
and 100 events stamped an hour apart arrived in one request were never flagged when
buckets followed them. The cost: an offline queue replayed at once counts at arrival,
so a replay of more than ``BOT_RATE["EVENTS"]`` events within one window is flagged.
Once a visitor trips the rate, its events stay flagged until it has been quiet for
``BOT_FLAG_SECONDS``.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Sequence

from . import cachekeys, counters
from .conf import settings


@lru_cache(maxsize=8)
def _pattern(source: str) -> re.Pattern:
    return re.compile(source, re.IGNORECASE)


def is_bot_agent(user_agent: str) -> bool:
    pattern = settings.BOT_USER_AGENT_PATTERN
    return bool(pattern and user_agent and _pattern(pattern).search(user_agent))


@dataclass
class RatePlan:
    """The counter increments one batch needs, and how to read their totals."""

    flag_key: str
    flag_ttl: int
    increments: list[tuple[str, int, int]]  # (key, n, ttl); the first reads the sticky flag
    buckets: list[int]  # per event
    keys: list[int]  # bucket of each increment after the first
    limit: int

    def verdicts(self, totals: Sequence[int]) -> tuple[list[bool], bool]:
        """Per-event flags, and whether the sticky flag must now be set."""
        flagged = totals[0] > 0
        over = {b for b, total in zip(self.keys, totals[1:]) if total > self.limit}
        return [flagged or b in over for b in self.buckets], bool(over) and not flagged


def rate_plan(visitor_id: str, times: Sequence[datetime]) -> RatePlan | None:
    conf = settings.BOT_RATE
    if not conf or not times:
        return None
    limit, seconds = int(conf["EVENTS"]), int(conf["SECONDS"])
    flag_ttl = int(settings.BOT_FLAG_SECONDS)
    buckets = [int(t.timestamp() // seconds) for t in times]
    per_bucket = Counter(buckets)
    keys = sorted(per_bucket)
    flag = flag_key(visitor_id)
    # INCRBY 0 reads the sticky flag in the same round trip and keeps it alive while the bot posts.
    incs = [(flag, 0, flag_ttl)] + [(cachekeys.visitor_key("lr:rate", visitor_id, str(b)), per_bucket[b], seconds * 2)
                                    for b in keys]
    return RatePlan(flag, flag_ttl, incs, buckets, keys, limit)


def flag_key(visitor_id: str) -> str:
    return cachekeys.visitor_key("lr:bot", visitor_id)


def rate_pattern(visitor_id: str) -> str:
    """Every rate counter of the visitor (one per time bucket), for a forget."""
    return cachekeys.visitor_pattern("lr:rate", visitor_id)


def inhuman(visitor_id: str, times: Sequence[datetime]) -> list[bool]:
    """One verdict per event arrival time: True where the visitor's rate is beyond a person's."""
    plan = rate_plan(visitor_id, times)
    if plan is None:
        return [False] * len(times)
    totals = counters.incr_many(settings.RATE_LIMIT_CACHE, plan.increments)
    if totals is None:
        return [False] * len(times)
    flags, trip = plan.verdicts(totals)
    if trip:
        counters.incr_many(settings.RATE_LIMIT_CACHE, [(plan.flag_key, 1, plan.flag_ttl)])
    return flags
