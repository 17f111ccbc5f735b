"""Parse the tool pages' plain HTML forms into the config dicts the services validate."""
from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.http import QueryDict

from ..strategies import registry

FOREVER = {"forever", "ever", "none", "null", "-"}


def parse_exclusions(text: str) -> dict[str, int | None]:
    """Lines like ``purchased forever`` or ``item_viewed 3600`` (seconds)."""
    out: dict[str, int | None] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValidationError(f"exclusion line {n}: write '<event name> <seconds>' or '<event name> forever'")
        name, window = parts
        if window.lower() in FOREVER:
            out[name] = None
        else:
            try:
                out[name] = int(window)
            except ValueError:
                raise ValidationError(f"exclusion line {n}: {window!r} is not a number of seconds or 'forever'") from None
    return out


def format_exclusions(rules: dict[str, int | None]) -> str:
    return "\n".join(f"{name} {'forever' if s is None else s}" for name, s in rules.items())


def _number(text: str, what: str) -> float:
    try:
        return float(json.loads(text)) if text.strip() else 0.0
    except (ValueError, TypeError):
        raise ValidationError(f"{what} must be a number, not {text!r}") from None


def slot_config_from_post(post: QueryDict) -> dict[str, Any]:
    """``w:<strategy>`` weights (0 or empty = off), ``c:<strategy>:<key>`` overrides, the rest."""
    strategies: dict[str, float] = {}
    per: dict[str, dict[str, Any]] = {}
    for sid in registry.ids():
        weight = _number(post.get(f"w:{sid}", ""), f"weight of {sid}")
        if weight:
            strategies[sid] = weight
        for key in registry.get(sid).DEFAULT_CONFIG:
            raw = post.get(f"c:{sid}:{key}", "").strip()
            if raw:
                try:
                    per.setdefault(sid, {})[key] = json.loads(raw)
                except ValueError:
                    raise ValidationError(f"{sid}.{key}: {raw!r} is not a JSON value (numbers as 0.5, text in quotes)") from None
    config: dict[str, Any] = {"strategies": strategies, "exclude_events": parse_exclusions(post.get("exclude", "")),
                              "limit": post.get("limit", "8"), "diversity": _number(post.get("diversity", "1"), "diversity")}
    if per:
        config["strategy_config"] = per
    return config


def interest_config_from_post(post: QueryDict) -> dict[str, Any]:
    weights = {}
    for key in post:
        if key.startswith("ew:") and post[key].strip():
            weights[key[3:]] = _number(post[key], f"weight of {key[3:]}")
    new_name, new_weight = post.get("new_event", "").strip(), post.get("new_weight", "").strip()
    if new_name and new_weight:
        weights[new_name] = _number(new_weight, f"weight of {new_name}")
    return {"EVENT_WEIGHTS": weights,
            "LONG_TERM_HALF_LIFE_HOURS": _number(post.get("long_half_life", ""), "long-term half-life"),
            "SHORT_TERM_HALF_LIFE_HOURS": _number(post.get("short_half_life", ""), "short-term half-life")}


def arms_from_post(post: QueryDict) -> list[dict[str, Any]]:
    """Rows ``arm_name_N``, ``arm_weight_N``, ``arm_source_N`` (a version number or 'live')."""
    arms = []
    for n in range(6):
        name = post.get(f"arm_name_{n}", "").strip()
        source = post.get(f"arm_source_{n}", "").strip()
        if not name and not source:
            continue
        arm: dict[str, Any] = {"name": name, "weight": _number(post.get(f"arm_weight_{n}", "1"), f"weight of arm {name}")}
        if source.isdigit():
            arm["version"] = int(source)
        arms.append(arm)
        arm["source"] = source
    return arms
