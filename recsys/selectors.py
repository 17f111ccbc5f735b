"""Reads of the recsys app for the engine, pages and the admin."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from tracking.models import Event

from .models import Item, SlotConfig, StrategyConfig


def excluded_items(visitor_id: str, rules: dict[str, int | None]) -> set[str]:
    """Items to leave out: per event name, forever (None) or for a window in seconds."""
    if not rules:
        return set()
    out: set[str] = set()
    now = timezone.now()
    for name, seconds in rules.items():
        qs = Event.objects.filter(visitor_id=visitor_id, name=name).exclude(item_id="")
        if seconds is not None:
            qs = qs.filter(occurred_at__gte=now - timedelta(seconds=int(seconds)))
        out.update(qs.values_list("item_id", flat=True).distinct()[:5000])
    return out


def recent_items(visitor_id: str, limit: int = 20) -> list[str]:
    rows = (Event.objects.filter(visitor_id=visitor_id).exclude(item_id="")
            .values("item_id").annotate(t=Max("occurred_at")).order_by("-t")[:limit])
    return [r["item_id"] for r in rows]


def items_by_id(item_ids: list[str]) -> dict[str, Item]:
    return {it.item_id: it for it in Item.objects.filter(item_id__in=item_ids).defer("embedding")}


def published_slot_config(slot: str) -> dict | None:
    row = SlotConfig.objects.filter(slot=slot, active=True).order_by("-version").values_list("config", flat=True).first()
    return row


def strategy_tuning(strategy_id: str) -> dict:
    return StrategyConfig.objects.filter(strategy_id=strategy_id).values_list("config", flat=True).first() or {}


# --- Admin tuning UI: experiments and the interest settings the projection reads ------------------


def experiment_slot_config(slot: str, visitor_id: str) -> dict | None:
    """The slot config of a running experiment's arm this visitor is assigned to, if any."""
    from .abtest import assign
    from .models import Experiment

    exp = Experiment.objects.filter(slot=slot, status=Experiment.Status.RUNNING).values("id", "arms").first()
    if exp is None or not exp["arms"]:
        return None
    return arm_config(slot, assign(exp["id"], visitor_id, exp["arms"]))


def arm_config(slot: str, arm: dict) -> dict | None:
    """An arm's slot config: its inline ``config``, else the published ``version`` of the slot."""
    if arm.get("config"):
        return arm["config"]
    if arm.get("version") is not None:
        return SlotConfig.objects.filter(slot=slot, version=int(arm["version"])).values_list("config", flat=True).first()
    return None


def interest_settings() -> dict:
    """Event weights and half-lives: the newest active published ``InterestConfig`` over settings."""
    from .conf import settings
    from .models import InterestConfig

    base = {"EVENT_WEIGHTS": dict(settings.EVENT_WEIGHTS),
            "LONG_TERM_HALF_LIFE_HOURS": settings.LONG_TERM_HALF_LIFE_HOURS,
            "SHORT_TERM_HALF_LIFE_HOURS": settings.SHORT_TERM_HALF_LIFE_HOURS}
    published = InterestConfig.objects.filter(active=True).order_by("-version").values_list("config", flat=True).first()
    if published:
        base.update({k: v for k, v in published.items() if k in base})
    return base
