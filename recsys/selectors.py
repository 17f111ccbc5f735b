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
