"""Offline evaluation through the real engine, on an isolated database.

What runs is what production runs: the CSV events are appended with
``tracking.services.append_events`` (validation, sessions, repeat flags), the projections
catch up with the same services the Celery workers call, the batch models train with the
same services the batch tasks call, and every ranked list comes from
``recsys.engine.recommend`` for a slot. The evaluation adds nothing but the protocol:

- every row is a slot published (as ``SlotConfig``) in the isolated database whose rules
  exclude every item the visitor interacted with before (``exclude_events``: all names,
  forever), i.e. the protocol's exclusion done by the engine's own rules;
- the default row is the site's slot (``--slot``, "for-you") with those rules; one row per
  strategy of the registry alone; and two in-memory baselines (popularity, item-kNN) that
  the engine does not run, computed on the same split.

Nothing touches the live site: a fresh PostgreSQL database is created for the run (Django's
test-database machinery: same server, all migrations applied) and dropped afterwards; the
cache is a private in-memory one; "events appended" subscribers (which would enqueue Celery
tasks on the live broker) are detached for the run.
"""
from __future__ import annotations

import os
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from django.db import connections

from recsys.engine import build_strategy, gather, recommend, slot_config, slot_strategies
from recsys.models import Item, SlotConfig
from recsys.services import items as item_service
from recsys.strategies import registry
from tracking import hooks
from tracking.models import Event
from tracking.services import append_events

from . import baselines, fusion_search, ranking_metrics
from .splits import Interaction, ItemRow, Split, Target, cold_items, loo, new_visitors, sparse, stream

DEFAULT_SLOT = "for-you"
EVAL_SLOT_PREFIX = "eval:"
# Projections the evaluation keeps current, in order, as the Celery realtime task does
# (``recsys.tasks.process_events``) minus the push. Dotted paths of zero-argument callables.
PROJECTIONS = ["recsys.services.interests.catch_up", "recsys.services.cooccurrence.catch_up"]
# Batch models trained once on the training part, as the beat schedule would before the run.
# (dotted path of the training service, strategy id whose tuned config it takes)
BATCH_TRAINERS = [("recsys.services.sequential.train_and_store", "sequential/next-item")]
# Events appended per call (the ingest view's own batch limit).
APPEND_BATCH = 100


@dataclass
class Row:
    name: str
    kind: str  # "slot" | "strategy" | "baseline"
    metrics: dict[str, float]
    seconds: float = 0.0


@dataclass
class Report:
    protocol: str
    k: int
    users: int
    items: int
    targets: int
    skipped_repeats: int
    rows: list[Row] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    slot_config: dict[str, Any] = field(default_factory=dict)
    # tune_weights: the slot's candidates per target (fusion_search.collection) and the search's result
    collected: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"protocol": self.protocol, "k": self.k, "users": self.users, "items": self.items,
               "targets": self.targets, "skipped_repeats": self.skipped_repeats, "slot_config": self.slot_config,
               "timings": self.timings,
               "rows": [{"name": r.name, "kind": r.kind, "seconds": round(r.seconds, 2), **r.metrics}
                        for r in self.rows]}
        if self.tuning is not None:
            out["tuning"] = self.tuning
        return out

    def table(self) -> str:
        k = self.k
        cols = [f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", "coverage", "novelty"]
        width = max([len(r.name) for r in self.rows] + [10]) + 2
        lines = [f"protocol={self.protocol} k={k} users={self.users} items={self.items} targets={self.targets}"
                 + (f" (skipped re-interactions: {self.skipped_repeats})" if self.skipped_repeats else ""),
                 f"{'row':<{width}}{'kind':<10}" + "".join(f"{c:>10}" for c in cols)]
        for r in self.rows:
            lines.append(f"{r.name:<{width}}{r.kind:<10}" + "".join(f"{r.metrics[c]:>10.4f}" for c in cols))
        return "\n".join(lines)


# -- isolation -----------------------------------------------------------------------------

@contextmanager
def isolated_database(alias: str = "default") -> Iterator[str]:
    """A fresh database on the same server for the duration of the block, then dropped."""
    from django.core.cache import caches
    from django.test.utils import override_settings


    conn = connections[alias]
    old_name = conn.settings_dict["NAME"]
    saved_test = dict(conn.settings_dict.get("TEST") or {})
    name = f"liverec_eval_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn.settings_dict["TEST"] = {**saved_test, "NAME": name}
    cache = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": name}}
    try:
        # create_test_db closes the connection but not a connection pool (OPTIONS["pool"]), whose
        # connections would still open the site's database: drop it first so the migrations and
        # everything after them run in the new one.
        conn.close()
        if hasattr(conn, "close_pool"):
            conn.close_pool()
        conn.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        # The copy's appends must not reach the site's projections and workers.
        with hooks.only(hooks.EVENTS_APPENDED), override_settings(CACHES=cache, LIVEREC_TRACKING=_tracking_settings()):
            caches["default"].clear()
            yield name
    finally:
        conn.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        conn.settings_dict["TEST"] = saved_test


def _tracking_settings() -> dict[str, Any]:
    """The site's tracking settings, accepting historical timestamps (this is an import)."""
    from django.conf import settings as dj

    current = dict(getattr(dj, "LIVEREC_TRACKING", {}) or {})
    current["MAX_EVENT_AGE_SECONDS"] = 100 * 365 * 24 * 3600
    return current


# -- loading the isolated database through the product's services --------------------------

def _call(path: str, *args, **kwargs):
    from django.utils.module_loading import import_string

    return import_string(path)(*args, **kwargs)


def load_items(items: list[ItemRow], progress: Callable[[int], None] | None = None) -> None:
    """Upsert the catalogue and embed it in-process (what the batch worker does)."""

    for row in items:
        item_service.upsert_item({"item_id": row.item_id, "title": row.title[:512], "text": row.text,
                                  "categories": [c[:64] for c in row.categories], "source": "import"}, embed=False)
    pks = list(Item.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), item_service.EMBED_BATCH):
        chunk = pks[start:start + item_service.EMBED_BATCH]
        item_service.embed_items(chunk)
        if progress:
            progress(len(chunk))


def _raw(e: Interaction) -> dict[str, Any]:
    props = {} if e.value is None else {"value": e.value}
    # Deterministic ids: re-running an import is idempotent, as for the tracker.
    eid = uuid.uuid5(uuid.NAMESPACE_URL, f"liverec-eval:{e.user}:{e.item}:{e.order}")
    ts = datetime.fromtimestamp(e.ts, tz=timezone.utc).isoformat()
    return {"id": str(eid), "name": e.event, "item_id": e.item, "props": props, "ts": ts}


def append(events: list[Interaction], progress: Callable[[int], None] | None = None) -> int:
    """Append in the given order, consecutive runs of one visitor per call (the ingest path)."""
    accepted = 0
    start = 0
    while start < len(events):
        end = start + 1
        while end < len(events) and end - start < APPEND_BATCH and events[end].user == events[start].user:
            end += 1
        run = events[start:end]
        outcomes = append_events([_raw(e) for e in run], visitor_id=run[0].user, source="import")
        accepted += sum(o.status == "accepted" for o in outcomes)
        if progress:
            progress(len(run))
        start = end
    return accepted


def catch_up() -> None:
    for path in PROJECTIONS:
        _call(path)


def train_batch_models(threads: int | None, bar=None) -> dict[str, float]:

    timings = {}
    for path, strategy_id in BATCH_TRAINERS:
        if strategy_id not in registry.ids():
            continue
        started = time.monotonic()
        config = build_strategy(strategy_id).config
        epochs = int(config.get("epochs", 0)) * max(1, int(config.get("ensemble", 1)))
        step = bar(f"train {strategy_id}", epochs or None) if bar else None
        _call(path, config, threads=threads, progress=(lambda epoch, loss, model: step(1)) if step else None)
        timings[f"train {strategy_id}"] = round(time.monotonic() - started, 1)
    return timings


ABLATION_SEP = " without "


def publish_eval_slots(slot: str, strategy_ids: list[str], event_names: list[str],
                       ablations: bool | list[str] = False) -> dict[str, dict]:
    """One published slot per row: the site's slot, each strategy alone and (``ablations``)
    the slot without each of its strategies (or without each of those listed), all with the
    protocol's exclusion (everything the visitor interacted with before, forever)."""

    exclude = {name: None for name in sorted(set(event_names))}
    base = slot_config(slot)
    rows = {slot: {**base, "exclude_events": exclude}}
    for sid in strategy_ids:
        rows[f"{EVAL_SLOT_PREFIX}{sid}"] = {**base, "strategies": {sid: 1.0}, "exclude_events": exclude}
    if ablations and len(base["strategies"]) > 1:
        for sid in base["strategies"]:
            if isinstance(ablations, list) and sid not in ablations:
                continue
            rest = {s: w for s, w in base["strategies"].items() if s != sid}
            rows[f"{slot}{ABLATION_SEP}{sid}"] = {**base, "strategies": rest, "exclude_events": exclude}
    for name, conf in rows.items():
        SlotConfig.objects.create(slot=name, version=1, config=conf, note="recsys_evaluate")
    return rows


# -- the run --------------------------------------------------------------------------------

PROTOCOLS = {"loo": loo, "stream": stream, "cold-items": cold_items, "new-visitors": new_visitors, "sparse": sparse}


def make_split(events: list[Interaction], protocol: str, validation: bool = False) -> Split:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol](events, validation=validation)


def _group_names(split: Split) -> list[str]:
    """Target groups reported beside "all" (cold-items: "cold", "warm")."""
    return sorted({t.group for t in split.targets if t.group})


def evaluate(events: list[Interaction], items: list[ItemRow], protocol: str, k: int = 10, *,
             slot: str = DEFAULT_SLOT, strategies: list[str] | None = None, validation: bool = False,
             threads: int | None = None, ablations: bool | list[str] = False, tune_weights: bool = False,
             progress=None) -> Report:
    """Run one protocol end to end. Call inside ``isolated_database()``.

    ``tune_weights``: also collect the slot's candidates per target and search its fusion
    weights offline (``tuning``); use it with ``validation``.

    ``progress(label, total)`` returns a callable taking an increment (e.g. a tqdm bar's update).
    """

    def bar(label: str, total: int) -> Callable[[int], None]:
        return progress(label, total) if progress else (lambda n: None)

    known = {it.item_id for it in items}
    events = [e for e in events if e.item in known]
    split = make_split(events, protocol, validation)
    catalogue = [it.item_id for it in items]
    strategy_ids = strategies if strategies is not None else registry.ids()
    report = Report(protocol=protocol, k=k, users=len({e.user for e in events}), items=len(items),
                    targets=len(split.targets), skipped_repeats=split.skipped_repeats)

    t = time.monotonic()
    load_items(items, bar("embed items", len(items)))
    report.timings["embed items"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    append(split.train, bar("append training events", len(split.train)))
    catch_up()
    report.timings["append + project training events"] = round(time.monotonic() - t, 1)
    report.timings.update(train_batch_models(threads, bar))
    slots = publish_eval_slots(slot, strategy_ids, [e.event for e in events], ablations)
    report.slot_config = slots[slot]

    row_slots = list(slots)
    groups = _group_names(split)
    accs = {name: ranking_metrics.Accumulator(k) for name in row_slots}
    group_accs = {(name, g): ranking_metrics.Accumulator(k) for name in row_slots for g in groups}
    spent = defaultdict(float)
    records: list[dict[str, Any]] = []

    def rank_all(target: Target) -> None:
        for name in row_slots:
            t0 = time.monotonic()
            recs = recommend(target.user, name, k)
            spent[name] += time.monotonic() - t0
            accs[name].add(target.item, recs.signature())
            if target.group:
                group_accs[(name, target.group)].add(target.item, recs.signature())
        if tune_weights:
            per_strategy, exclude, _, _ = gather(target.user, slots[slot], k)
            records.append(fusion_search.collect_one(per_strategy, exclude, target.item))

    step = bar(f"rank {protocol} targets", len(split.targets))
    if not split.stream:
        for target in split.targets:
            rank_all(target)
            step(1)
    else:
        targets_by_event = {id(t.event): t for t in split.targets}
        for e in split.stream:
            target = targets_by_event.get(id(e))
            if target is not None:
                rank_all(target)
                step(1)
            # The event happens: into the log, through the projections, before the next one.
            append([e])
            catch_up()

    # Baselines, trained once on the training part (as the peers are), same exclusion.
    item_users = Counter()
    for user, item in {(e.user, e.item) for e in split.train}:
        item_users[item] += 1
    n_users = len({e.user for e in split.train}) or 1
    for name, model in (("popularity", baselines.Popularity(catalogue, split.train)),
                        ("item-kNN (cosine, k=10)", baselines.ItemKNN(catalogue, split.train, neighbours=10))):
        t0 = time.monotonic()
        acc = ranking_metrics.Accumulator(k)
        by_group = {g: ranking_metrics.Accumulator(k) for g in groups}
        for target in split.targets:
            listed = model.recommend([h.item for h in target.history], k)
            acc.add(target.item, listed)
            if target.group:
                by_group[target.group].add(target.item, listed)
        report.rows.append(Row(name, "baseline", acc.result(len(catalogue), item_users, n_users),
                               time.monotonic() - t0))
        for g in groups:
            report.rows.append(Row(f"{name} [{g}]", "baseline", by_group[g].result(len(catalogue), item_users, n_users)))
    for name in row_slots:
        if name.startswith(EVAL_SLOT_PREFIX):
            kind, label = "strategy", name[len(EVAL_SLOT_PREFIX):]
        else:
            kind, label = "slot", f"{name} (default slot)" if name == slot else name
        report.rows.append(Row(label, kind, accs[name].result(len(catalogue), item_users, n_users), spent[name]))
        for g in groups:
            report.rows.append(Row(f"{label} [{g}]", kind,
                                   group_accs[(name, g)].result(len(catalogue), item_users, n_users)))
    if tune_weights:
        report.collected = fusion_search.collection(k, slot_strategies(slots[slot]), records)
        report.tuning = fusion_search.tune(report.collected)
    return report


def site_log() -> tuple[list[Interaction], list[ItemRow]]:
    """The live site's own log and catalogue, read before switching to the isolated database."""

    events = []
    qs = (Event.objects.filter(is_bot=False).exclude(item_id="").order_by("occurred_at", "id")
          .values_list("visitor_id", "item_id", "name", "occurred_at", "properties"))
    for n, (vid, item, name, at, props) in enumerate(qs.iterator(chunk_size=20000)):
        value = props.get("value") if isinstance(props, dict) else None
        events.append(Interaction(vid, item, name, at.timestamp(), float(value) if isinstance(value, (int, float)) else None, n))
    items = [ItemRow(i, t, x, list(c or [])) for i, t, x, c in
             Item.objects.order_by("pk").values_list("item_id", "title", "text", "categories")]
    return events, items
