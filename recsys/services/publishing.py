"""Writes of the admin tuning UI: validate, publish and roll back slot and interest settings.

Published rows are never edited: publishing adds a version, rolling back publishes an old
version's config again as a new version (so the history reads as what was live, when).
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..conf import settings
from ..engine import slot_config
from ..models import InterestConfig, SlotConfig, StrategyConfig
from ..selectors import interest_settings
from ..strategies import registry
from . import audit

SLOT_KEYS = {"strategies", "exclude_events", "limit", "diversity", "strategy_config",
             # Engine keys the form does not edit yet; kept as published so a publish never drops them.
             "if_registered", "freshness", "rules", "filters", "pool", "fill"}
PASS_THROUGH = {"if_registered": dict, "freshness": dict, "rules": list, "filters": dict, "pool": int, "fill": bool}
INTEREST_KEYS = {"EVENT_WEIGHTS", "LONG_TERM_HALF_LIFE_HOURS", "SHORT_TERM_HALF_LIFE_HOURS"}


def live_slot_config(slot: str) -> dict[str, Any]:
    """What visitors outside experiments get now (newest published version, else settings)."""
    return slot_config(slot)


def slot_names() -> list[str]:
    published = set(SlotConfig.objects.values_list("slot", flat=True).distinct())
    return sorted(set(settings.SLOTS) | published)


def validate_slot_config(config: dict[str, Any]) -> dict[str, Any]:
    """A cleaned copy of a slot config, or ValidationError naming the field at fault."""
    if not isinstance(config, dict):
        raise ValidationError("a slot config is a JSON object")
    unknown = set(config) - SLOT_KEYS
    if unknown:
        raise ValidationError(f"unknown keys {sorted(unknown)}; valid keys: {sorted(SLOT_KEYS)}")
    valid_ids = registry.ids()
    strategies = config.get("strategies") or {}
    if not isinstance(strategies, dict) or not strategies:
        raise ValidationError("strategies: give at least one strategy with a weight")
    clean: dict[str, Any] = {"strategies": {}}
    for sid, weight in strategies.items():
        if sid not in valid_ids:
            raise ValidationError(f"strategies: unknown strategy {sid!r}; registered strategies: {valid_ids}")
        try:
            clean["strategies"][sid] = float(weight)
        except (TypeError, ValueError):
            raise ValidationError(f"strategies: weight of {sid!r} must be a number, not {weight!r}") from None
    exclude = config.get("exclude_events") or {}
    if not isinstance(exclude, dict):
        raise ValidationError("exclude_events: an object of event name -> seconds (or null for ever)")
    clean["exclude_events"] = {}
    for name, seconds in exclude.items():
        if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValidationError(f"exclude_events: window of {name!r} must be positive seconds or null (for ever)")
        clean["exclude_events"][str(name)] = None if seconds is None else int(seconds)
    try:
        limit = int(config.get("limit", 8))
        diversity = float(config.get("diversity", 1.0))
    except (TypeError, ValueError):
        raise ValidationError("limit must be an integer and diversity a number") from None
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be from 1 to 100")
    if not 0.0 <= diversity <= 1.0:
        raise ValidationError("diversity (MMR lambda) must be from 0 (most varied) to 1 (pure relevance)")
    clean["limit"] = limit
    if diversity < 1.0:
        clean["diversity"] = diversity
    for key, kind in PASS_THROUGH.items():
        if key in config and config[key] is not None:
            if not isinstance(config[key], kind):
                raise ValidationError(f"{key} must be a JSON {kind.__name__}")
            clean[key] = config[key]
    per = config.get("strategy_config") or {}
    if not isinstance(per, dict):
        raise ValidationError("strategy_config: an object of strategy id -> config overrides")
    cleaned_per = {}
    for sid, overrides in per.items():
        if not overrides:
            continue
        cleaned_per[sid] = validate_strategy_config(sid, overrides)
    if cleaned_per:
        clean["strategy_config"] = cleaned_per
    return clean


def validate_strategy_config(strategy_id: str, overrides: Any) -> dict[str, Any]:
    """Overrides may only set keys the strategy's DEFAULT_CONFIG has, with the same JSON type."""
    cls = registry.get(strategy_id)
    if not isinstance(overrides, dict):
        raise ValidationError(f"config of {strategy_id!r} must be a JSON object")
    defaults = cls.DEFAULT_CONFIG
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValidationError(f"{strategy_id}: unknown keys {sorted(unknown)}; valid keys: {sorted(defaults)}")
    out = {}
    for key, value in overrides.items():
        default = defaults[key]
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError(f"{strategy_id}.{key} must be a number like its default {default!r}")
            value = type(default)(value) if isinstance(default, float) else value
        elif not isinstance(value, type(default)):
            raise ValidationError(f"{strategy_id}.{key} must be a {type(default).__name__} like its default {default!r}")
        out[key] = value
    return out


@transaction.atomic
def publish_slot_config(slot: str, config: dict[str, Any], *, user: str, note: str = "",
                        action: str = "publish_slot") -> SlotConfig:
    """Publish ``config`` as the slot's newest active version; audited with the diff from live."""
    clean = validate_slot_config(config)
    before = live_slot_config(slot) if slot in slot_names() else {}
    # Lock the slot's rows so two publishers cannot take the same version number.
    last = SlotConfig.objects.select_for_update().filter(slot=slot).order_by("-version").first()
    row = SlotConfig.objects.create(slot=slot, version=(last.version + 1) if last else 1, config=clean,
                                    active=True, created_by=user, note=note[:255])
    audit.record(user, action, str(row), {"note": note, "changes": audit.diff(before, clean)})
    return row


def rollback_slot_config(slot: str, version: int, *, user: str) -> SlotConfig:
    """Make an old version live again (as a new version carrying its config)."""
    old = SlotConfig.objects.get(slot=slot, version=version)
    return publish_slot_config(slot, old.config, user=user, note=f"rollback to v{version}", action="rollback_slot")


def slot_history(slot: str) -> list[dict[str, Any]]:
    """Versions newest first, each with its diff from the version before it."""
    rows = list(SlotConfig.objects.filter(slot=slot).order_by("version"))
    out, prev = [], settings.SLOTS.get(slot, {})
    for row in rows:
        out.append({"row": row, "changes": audit.diff(prev, row.config)})
        prev = row.config
    return out[::-1]


@transaction.atomic
def save_strategy_config(strategy_id: str, overrides: dict[str, Any], *, user: str) -> StrategyConfig:
    """Set a strategy's global tuning row (every slot using it), audited."""
    clean = validate_strategy_config(strategy_id, overrides)
    row, _ = StrategyConfig.objects.select_for_update().get_or_create(strategy_id=strategy_id)
    before = dict(row.config)
    row.config = clean
    row.save()
    audit.record(user, "save_strategy_config", strategy_id, {"changes": audit.diff(before, clean)})
    return row


def validate_interest_config(config: dict[str, Any]) -> dict[str, Any]:
    unknown = set(config) - INTEREST_KEYS
    if unknown:
        raise ValidationError(f"unknown keys {sorted(unknown)}; valid keys: {sorted(INTEREST_KEYS)}")
    clean: dict[str, Any] = {}
    weights = config.get("EVENT_WEIGHTS", {})
    if not isinstance(weights, dict):
        raise ValidationError("EVENT_WEIGHTS: an object of event name -> weight")
    try:
        clean["EVENT_WEIGHTS"] = {str(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise ValidationError("EVENT_WEIGHTS: every weight must be a number (negative for dislikes)") from None
    for key in ("LONG_TERM_HALF_LIFE_HOURS", "SHORT_TERM_HALF_LIFE_HOURS"):
        if key in config:
            try:
                value = float(config[key])
            except (TypeError, ValueError):
                raise ValidationError(f"{key} must be a number of hours") from None
            if value <= 0:
                raise ValidationError(f"{key} must be positive")
            clean[key] = value
    return clean


@transaction.atomic
def publish_interest_config(config: dict[str, Any], *, user: str, note: str = "") -> InterestConfig:
    """Publish event weights / half-lives; the projection applies them to events folded from now on
    (``manage.py recsys_replay`` re-applies them to the whole history)."""
    clean = validate_interest_config(config)
    before = interest_settings()
    last = InterestConfig.objects.select_for_update().order_by("-version").first()
    row = InterestConfig.objects.create(version=(last.version + 1) if last else 1, config=clean, created_by=user,
                                        note=note[:255])
    audit.record(user, "publish_interest", str(row), {"note": note, "changes": audit.diff(before, {**before, **clean})})
    return row


def rollback_interest_config(version: int, *, user: str) -> InterestConfig:
    """Make an old interest-settings version live again (as a new version carrying its config)."""
    old = InterestConfig.objects.get(version=version)
    return publish_interest_config(old.config, user=user, note=f"rollback to v{version}")


def interest_history(limit: int = 20) -> list[dict[str, Any]]:
    """Interest-settings versions newest first, each with its diff from the one before."""
    rows = list(InterestConfig.objects.order_by("version"))
    base = {"EVENT_WEIGHTS": dict(settings.EVENT_WEIGHTS), "LONG_TERM_HALF_LIFE_HOURS": settings.LONG_TERM_HALF_LIFE_HOURS,
            "SHORT_TERM_HALF_LIFE_HOURS": settings.SHORT_TERM_HALF_LIFE_HOURS}
    out, prev = [], base
    for row in rows:
        full = {**base, **row.config}
        out.append({"row": row, "changes": audit.diff(prev, full)})
        prev = full
    return out[::-1][:limit]
