"""A per-process cache of each item's top associated items: the co-occurrence strategy's read.

Under the freshness bench's load that read was the realtime path's costliest statement in
PostgreSQL (pg_stat_statements: ~20 ms a call for the ~76 seeds of a cycle's visitors, each an
index scan of a table the association fold rewrites thousands of rows a second). Seeds repeat
from cycle to cycle (a visitor's recent items, the catalogue's popular ones), so each process
keeps what it read for ``NEIGHBOUR_CACHE_SECONDS``: with it, ~34 seeds a call and about a
quarter less of that statement's time per push.

What that costs in freshness: a pair the association fold wrote reaches the co-occurrence
strategy of another process at most that long later. The associations already lag the log by a
batch task, and a visitor's own push never needed them (the pairs its events just formed join
items that are already its seeds). A fold run in this process forgets everything at once.
"""
from __future__ import annotations

import threading
import time

from .conf import settings

# Bounded: an entry is one item's ~50 neighbours (a few KB); past this many, expired entries go,
# then everything (a catalogue larger than the cache then reads as before, never worse).
MAX_ENTRIES = 20_000

_entries: dict[tuple[str, int], tuple[float, tuple, str]] = {}  # (item, per_item) -> (expires, rows, title)
_lock = threading.Lock()  # the engine's strategy threads (recsys.overlap) share it


def ttl() -> float:
    return max(0.0, float(settings.NEIGHBOUR_CACHE_SECONDS))


def split(item_ids: list[str], per_item: int) -> tuple[dict[str, tuple], dict[str, str], list[str]]:
    """The cached ``(neighbours, titles)`` of ``item_ids`` and the ids still to read."""
    keys: dict[str, tuple] = {}
    titles: dict[str, str] = {}
    missing: list[str] = []
    now = time.monotonic()
    with _lock:
        for a in item_ids:
            hit = _entries.get((a, per_item))
            if hit is None or hit[0] <= now:
                missing.append(a)
                continue
            keys[a] = hit[1]
            titles[a] = hit[2]
    return keys, titles, missing


def put(asked: list[str], per_item: int, keys: dict[str, list], titles: dict[str, str]) -> None:
    """Remember a read of ``asked``. An item with no neighbours yet is not remembered: on a new
    site its first pairs then show at once, as the trending cache does with an empty list."""
    seconds = ttl()
    if not seconds or not asked:
        return
    now = time.monotonic()
    expires = now + seconds
    with _lock:
        if len(_entries) + len(keys) > MAX_ENTRIES:
            for key in [k for k, v in _entries.items() if v[0] <= now]:
                del _entries[key]
            if len(_entries) + len(keys) > MAX_ENTRIES:
                _entries.clear()
        for a in asked:
            if keys.get(a):
                # Tuples of strings and floats only: the collector stops tracking them, so what
                # the cache holds adds nothing to a full collection's walk (lists would).
                _entries[(a, per_item)] = (expires, tuple(keys[a]), titles.get(a, ""))


def forget_all() -> None:
    """After this process changed the associations (a fold, a rebuild, a prune)."""
    with _lock:
        _entries.clear()
