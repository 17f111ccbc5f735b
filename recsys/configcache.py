"""Slot configurations, strategy tuning, running experiments and the published interest
settings, read once per change instead of on every request (or fold).

Every process keeps the published slot configs, the strategy tuning rows and the running
experiments in memory, tagged with a generation token kept in the Django cache (Redis). A
request costs at most one cache GET; saving or deleting a SlotConfig, StrategyConfig or
Experiment (admin, services, shell) sets a new token after the commit, and every process
reloads the three tables on its next check. (The experiment lookup was one query per
recommendation, 12% of a for-you request's time at 100k items. The interest settings were a
query in every fold of the realtime worker, inside the projection's lock.)
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .models import Experiment, InterestConfig, SlotConfig, StrategyConfig

GENERATION_KEY = "liverec:config-generation"
# How long a process trusts its copy before asking the cache for the generation again.
# Saving in this process invalidates at once; other processes follow within this time.
# Measured under load here: a cache GET costs 1-10 ms, more than the rest of a cold request.
CHECK_SECONDS = 1.0

_lock = threading.Lock()
_snapshot: dict[str, Any] = {"generation": None, "slots": {}, "tuning": {}, "experiments": {}, "interest": None,
                             "checked": 0.0}


def _generation() -> str | None:
    try:
        gen = cache.get(GENERATION_KEY)
        if gen is None:
            cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
            gen = cache.get(GENERATION_KEY)
        return gen
    except Exception:  # cache down: read the database every time rather than serve stale config
        return None


def _load() -> dict[str, Any]:
    slots: dict[str, dict] = {}
    for slot, config in (SlotConfig.objects.filter(active=True).order_by("slot", "-version")
                         .values_list("slot", "config")):
        slots.setdefault(slot, config)  # newest active version per slot
    tuning = dict(StrategyConfig.objects.values_list("strategy_id", "config"))
    # At most one running experiment per slot (a database constraint). An arm naming a
    # published version carries that version's config here, so serving it reads nothing.
    experiments = {}
    for pk, slot, arms in Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("id", "slot", "arms"):
        if arms:
            experiments[slot] = {"id": pk, "arms": [_resolved_arm(slot, arm) for arm in arms]}
    interest = InterestConfig.objects.filter(active=True).order_by("-version").values_list("config", flat=True).first()
    return {"slots": slots, "tuning": tuning, "experiments": experiments, "interest": interest}


def _resolved_arm(slot: str, arm: dict[str, Any]) -> dict[str, Any]:
    if arm.get("config") or arm.get("version") is None:
        return arm
    config = SlotConfig.objects.filter(slot=slot, version=int(arm["version"])).values_list("config", flat=True).first()
    return {**arm, "config": config} if config else arm


def snapshot() -> dict[str, Any]:
    """{"slots": {slot: published config}, "tuning": {strategy id: config},
    "experiments": {slot: {"id", "arms"} of its running experiment},
    "interest": the newest active published interest settings or None}, current."""
    now = time.monotonic()
    with _lock:
        if _snapshot["generation"] is not None and now - _snapshot["checked"] < CHECK_SECONDS:
            return _snapshot
    gen = _generation()
    with _lock:
        if gen is not None and _snapshot["generation"] == gen:
            _snapshot["checked"] = now
            return _snapshot
    data = _load()  # read after the generation: a change racing this load bumps it again
    with _lock:
        _snapshot.update(data, generation=gen, checked=now)
        return dict(_snapshot)


def invalidate(**kwargs: Any) -> None:
    """Signal receiver: a SlotConfig/StrategyConfig/Experiment/InterestConfig changed; every
    process reloads after commit."""
    def bump() -> None:
        with _lock:
            _snapshot["generation"] = None
        try:
            cache.set(GENERATION_KEY, uuid.uuid4().hex, None)
        except Exception:
            pass

    with _lock:
        _snapshot["generation"] = None
    transaction.on_commit(bump)


def connect() -> None:
    """Called from RecsysConfig.ready()."""
    for model in (SlotConfig, StrategyConfig, Experiment, InterestConfig):
        post_save.connect(invalidate, sender=model, dispatch_uid=f"liverec-config-{model.__name__}-save")
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"liverec-config-{model.__name__}-delete")
