"""The protocols of the evaluation, as plain data (no database).

- loo: per user, interactions sorted by time (ties by file order); the last is the test
  target, the one before it the validation target.
- stream: all interactions in global time order (ties by file order); the last 10% are
  predicted one by one, each from everything before it in time.
- cold-items: loo, with the newest 20% of items (by first appearance) withheld from training
  and from every history; targets are grouped "cold" (a withheld item) and "warm".
- new-visitors: the newest 20% of visitors with 3 or more interactions (by first appearance)
  are left out of training but for their first interaction; their 2nd and 3rd are predicted
  one by one (from the first, then the first two), as the stream protocol feeds them.
- sparse: loo on a subsample where the median visitor has about 6 interactions and the
  median item about 5 (each visitor's latest ones among the most popular items).

In both, the items the user interacted with before the target are excluded from the ranking.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class Interaction:
    user: str
    item: str
    event: str
    ts: float  # unix seconds
    value: float | None
    order: int  # position in the file: breaks timestamp ties

    @property
    def key(self) -> tuple[float, int]:
        return (self.ts, self.order)


@dataclass
class ItemRow:
    item_id: str
    title: str
    text: str = ""
    categories: list[str] = field(default_factory=list)


@dataclass
class Target:
    """One prediction to make: ``user`` next interacts with ``item``, after ``history``."""

    user: str
    item: str
    history: list[Interaction]  # the user's interactions before the target, oldest first
    at: float
    event: Interaction | None = None  # the held-out interaction itself
    group: str = ""  # cold-items: "cold" or "warm"


@dataclass
class Split:
    protocol: str
    train: list[Interaction]  # what the models are trained on, in global time order
    targets: list[Target]
    # stream only: the held-out events in time order, fed to the projections as they stream in
    stream: list[Interaction] = field(default_factory=list)
    skipped_repeats: int = 0


def _parse_time(raw: str) -> float:
    raw = raw.strip()
    try:
        return float(raw)
    except ValueError:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()


def read_events(path: str | Path) -> list[Interaction]:
    """EVENTS.csv: user_id,item_id,event,timestamp[,value] (timestamp: unix seconds or ISO 8601)."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"user_id", "item_id", "event", "timestamp"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; expected user_id,item_id,event,timestamp[,value]")
        for n, row in enumerate(reader):
            value = row.get("value")
            out.append(Interaction(str(row["user_id"]), str(row["item_id"]), row["event"].strip() or "rated",
                                   _parse_time(row["timestamp"]), float(value) if value not in (None, "") else None, n))
    return out


def read_items(path: str | Path) -> list[ItemRow]:
    """ITEMS.csv: item_id,title[,text][,categories] (categories separated by '|')."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"item_id", "title"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; expected item_id,title[,text][,categories]")
        for row in reader:
            cats = [c.strip() for c in (row.get("categories") or "").split("|") if c.strip()]
            out.append(ItemRow(str(row["item_id"]), row["title"], row.get("text") or "", cats))
    return out


def _by_user(events: list[Interaction]) -> dict[str, list[Interaction]]:
    users: dict[str, list[Interaction]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.key):
        users[e.user].append(e)
    return users


def loo(events: list[Interaction], *, validation: bool = False) -> Split:
    """Leave-one-out. ``validation=True``: the targets are the second-to-last interactions and
    the test interactions are dropped (for tuning); otherwise the targets are the last ones and
    everything before them (validation included) is training data."""
    train: list[Interaction] = []
    targets: list[Target] = []
    for user, seq in _by_user(events).items():
        if validation:
            seq = seq[:-1]
        if len(seq) < 2:
            train.extend(seq)
            continue
        *hist, last = seq
        train.extend(hist)
        targets.append(Target(user, last.item, hist, last.ts, last))
    train.sort(key=lambda e: e.key)
    return Split("loo", train, targets)


def stream(events: list[Interaction], *, test_fraction: float = 0.1, validation: bool = False) -> Split:
    """Global time order; the last ``test_fraction`` are predicted one by one.

    ``validation=True`` drops the test part and holds out the last ``test_fraction`` of the rest.
    Re-interactions with an item already in the user's history cannot be ranked (excluded
    items) and are skipped, counted in ``skipped_repeats``.
    """
    ordered = sorted(events, key=lambda e: e.key)
    if validation:
        ordered = ordered[:len(ordered) - int(round(len(ordered) * test_fraction))]
    cut = len(ordered) - int(round(len(ordered) * test_fraction))
    train, held = ordered[:cut], ordered[cut:]
    history: dict[str, list[Interaction]] = defaultdict(list)
    for e in train:
        history[e.user].append(e)
    targets: list[Target] = []
    skipped = 0
    for e in held:
        hist = history[e.user]
        if any(h.item == e.item for h in hist):
            skipped += 1
        else:
            targets.append(Target(e.user, e.item, list(hist), e.ts, e))
        hist.append(e)
    return Split("stream", train, targets, stream=held, skipped_repeats=skipped)


def _first_seen(events: list[Interaction], key) -> list[str]:
    """Distinct values of ``key(event)`` in order of first appearance (time, then file order)."""
    seen: dict[str, None] = {}
    for e in sorted(events, key=lambda e: e.key):
        seen.setdefault(key(e), None)
    return list(seen)


def cold_items(events: list[Interaction], *, fraction: float = 0.2, validation: bool = False) -> Split:
    """loo with the newest ``fraction`` of items withheld: no training event, no history event
    of theirs; a target on one of them is "cold", any other "warm"."""
    order = _first_seen(events, lambda e: e.item)
    cold = set(order[len(order) - int(round(len(order) * fraction)):])
    train: list[Interaction] = []
    targets: list[Target] = []
    for user, seq in _by_user(events).items():
        if validation:
            seq = seq[:-1]
        hist = [e for e in seq[:-1] if e.item not in cold]
        train.extend(hist)
        if len(seq) < 2 or not hist:
            continue
        last = seq[-1]
        targets.append(Target(user, last.item, hist, last.ts, last, "cold" if last.item in cold else "warm"))
    train.sort(key=lambda e: e.key)
    return Split("cold-items", train, targets)


def new_visitors(events: list[Interaction], *, fraction: float = 0.2, validation: bool = False) -> Split:
    """The newest ``fraction`` of visitors with 3+ interactions, unseen but for their first
    interaction; their 2nd and 3rd are the targets, fed in order (``Split.stream``).
    ``validation``: a disjoint set of visitors (the next-newest ``fraction``) instead."""
    users = _by_user(events)
    eligible = [u for u in _first_seen(events, lambda e: e.user) if len(users[u]) >= 3]
    n = int(round(len(eligible) * fraction))
    chosen = set(eligible[len(eligible) - n:] if not validation else eligible[len(eligible) - 2 * n:len(eligible) - n])
    train: list[Interaction] = []
    held: list[Interaction] = []
    targets: list[Target] = []
    for user, seq in users.items():
        if user not in chosen:
            if not validation or user not in set(eligible[len(eligible) - n:]):
                train.extend(seq)
            continue
        train.append(seq[0])
        for i in (1, 2):
            held.append(seq[i])
            if all(h.item != seq[i].item for h in seq[:i]):
                targets.append(Target(user, seq[i].item, list(seq[:i]), seq[i].ts, seq[i]))
    train.sort(key=lambda e: e.key)
    held.sort(key=lambda e: e.key)
    return Split("new-visitors", train, targets, stream=held)


def sparse_sample(events: list[Interaction], *, visitor_events: int = 6, item_events: int = 5) -> list[Interaction]:
    """Each visitor's latest ``visitor_events`` interactions among the most popular items,
    with as many items kept as brings the median item's count closest to ``item_events``."""
    from statistics import median

    popularity: dict[str, int] = defaultdict(int)
    for e in events:
        popularity[e.item] += 1
    ranked = sorted(popularity, key=lambda i: (-popularity[i], i))
    users = _by_user(events)

    def sample(top: int) -> list[Interaction]:
        keep = set(ranked[:top])
        out = []
        for seq in users.values():
            out.extend([e for e in seq if e.item in keep][-visitor_events:])
        return out

    best, best_gap = events, float("inf")
    lo, hi = 1, len(ranked)
    while lo <= hi:  # the median item count falls as more items are kept
        mid = (lo + hi) // 2
        kept = sample(mid)
        counts: dict[str, int] = defaultdict(int)
        for e in kept:
            counts[e.item] += 1
        med = median(counts.values()) if counts else 0
        if abs(med - item_events) < best_gap:
            best, best_gap = kept, abs(med - item_events)
        if med > item_events:
            lo = mid + 1
        else:
            hi = mid - 1
    return sorted(best, key=lambda e: e.key)


def sparse(events: list[Interaction], *, validation: bool = False) -> Split:
    """loo on ``sparse_sample(events)``."""
    split = loo(sparse_sample(events), validation=validation)
    split.protocol = "sparse"
    return split
