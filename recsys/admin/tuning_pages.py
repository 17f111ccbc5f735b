"""Slot and strategy tuning with a side-by-side preview; publish, history, rollback."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import selectors
from ..engine import build_strategy, recommend
from ..models import InterestConfig, SlotConfig
from ..services import publishing
from ..strategies import registry
from ..stats import find_visitors
from .base import PUBLISH, VIEW_TUNING, render, requires, username
from .forms import format_exclusions, interest_config_from_post, slot_config_from_post


@requires(VIEW_TUNING)
def overview(request: HttpRequest) -> HttpResponse:
    slots = []
    for slot in publishing.slot_names():
        live = SlotConfig.objects.filter(slot=slot, active=True).order_by("-version").first()
        slots.append({"slot": slot, "config": publishing.live_slot_config(slot), "version": live})
    strategies = [{"id": sid, "defaults": registry.get(sid).DEFAULT_CONFIG, "tuning": selectors.strategy_tuning(sid),
                   "effective": build_strategy(sid).config} for sid in registry.ids()]
    return render(request, "admin/recsys/tuning/overview.html",
                  {"slots": slots, "strategies": strategies, "interest": selectors.interest_settings()},
                  "Slot and strategy tuning")


def _form_context(slot: str, config: dict) -> dict:
    per = config.get("strategy_config", {})
    rows = []
    for sid in registry.ids():
        cls = registry.get(sid)
        base = build_strategy(sid).config  # DEFAULT_CONFIG + the global tuning row
        rows.append({"id": sid, "weight": config.get("strategies", {}).get(sid, ""),
                     "params": [{"key": k, "base": base[k], "value": per.get(sid, {}).get(k, "")}
                                for k in cls.DEFAULT_CONFIG]})
    return {"strategy_rows": rows, "exclude_text": format_exclusions(config.get("exclude_events", {})),
            "limit": config.get("limit", 8), "diversity": config.get("diversity", 1.0)}


@requires(VIEW_TUNING)
def edit_slot(request: HttpRequest, slot: str) -> HttpResponse:
    if slot not in publishing.slot_names():
        raise Http404(f"unknown slot {slot!r}")
    config, error = publishing.live_slot_config(slot), None
    if request.method == "POST":
        if not request.user.has_perm(PUBLISH):
            return render(request, "admin/recsys/denied.html", {"perm": PUBLISH}, "Permission needed")
        try:
            config = _edited(slot, request.POST)
            row = publishing.publish_slot_config(slot, config, user=username(request), note=request.POST.get("note", ""))
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            messages.success(request, f"Published {row}.")
            return redirect(reverse("admin:recsys_tune_slot", args=[slot]))
    live_row = SlotConfig.objects.filter(slot=slot, active=True).order_by("-version").first()
    ctx = {"slot": slot, "error": error, "live_row": live_row, "history": publishing.slot_history(slot),
           "visitors": find_visitors(limit=30), **_form_context(slot, config)}
    return render(request, "admin/recsys/tuning/slot.html", ctx, f"Tune slot “{slot}”")


def _edited(slot: str, post) -> dict:
    """The form's fields over the live config: engine keys the form does not show are kept."""
    live = publishing.live_slot_config(slot)
    return {**{k: v for k, v in live.items() if k in publishing.PASS_THROUGH}, **slot_config_from_post(post)}


def _side(visitor_id: str, slot: str, item_id: str, config: dict | None):
    try:
        recs = recommend(visitor_id, slot, context={"item_id": item_id} if item_id else None, config=config)
        return recs.items, None
    except (ImproperlyConfigured, ValueError) as exc:
        return [], str(exc)


@require_POST
@requires(VIEW_TUNING)
def preview(request: HttpRequest, slot: str) -> HttpResponse:
    """The live list and the list under the edited (unpublished) settings, side by side.

    A POST (with CSRF) because it carries the whole edited form; it writes nothing.
    """
    if slot not in publishing.slot_names():
        raise Http404(f"unknown slot {slot!r}")
    visitor_id = request.POST.get("visitor", "").strip()
    item_id = request.POST.get("item", "").strip()
    ctx = {"slot": slot, "visitor_id": visitor_id, "item_id": item_id}
    try:
        edited = publishing.validate_slot_config(_edited(slot, request.POST))
    except ValidationError as exc:
        ctx["error"] = "; ".join(exc.messages)
        return TemplateResponse(request, "admin/recsys/tuning/_preview.html", ctx)
    if not visitor_id and not item_id:
        ctx["error"] = "Pick a visitor or enter an item id to preview."
        return TemplateResponse(request, "admin/recsys/tuning/_preview.html", ctx)
    who = visitor_id or "preview-anonymous"
    live, live_err = _side(who, slot, item_id, publishing.live_slot_config(slot))
    new, new_err = _side(who, slot, item_id, edited)
    live_rank = {r.item_id: i for i, r in enumerate(live)}
    new_rows = []
    for i, r in enumerate(new):
        before = live_rank.get(r.item_id)
        new_rows.append({"rec": r, "move": None if before is None else before - i, "is_new": before is None})
    new_ids = {r.item_id for r in new}
    ctx.update(live=[{"rec": r, "dropped": r.item_id not in new_ids} for r in live], edited=new_rows,
               error=live_err or new_err)
    return TemplateResponse(request, "admin/recsys/tuning/_preview.html", ctx)


@require_POST
@requires(PUBLISH)
def rollback(request: HttpRequest, slot: str, version: int) -> HttpResponse:
    try:
        row = publishing.rollback_slot_config(slot, version, user=username(request))
    except SlotConfig.DoesNotExist:
        raise Http404(f"slot {slot!r} has no version {version}") from None
    messages.success(request, f"Rolled back: {row} carries v{version}'s settings.")
    return redirect(reverse("admin:recsys_tune_slot", args=[slot]))


@require_POST
@requires(PUBLISH)
def save_strategy(request: HttpRequest, strategy_id: str) -> HttpResponse:
    import json

    if strategy_id not in registry.ids():
        raise Http404(f"unknown strategy {strategy_id!r}")
    overrides = {}
    try:
        for key in registry.get(strategy_id).DEFAULT_CONFIG:
            raw = request.POST.get(f"g:{key}", "").strip()
            if raw:
                try:
                    overrides[key] = json.loads(raw)
                except ValueError:
                    raise ValidationError(f"{strategy_id}.{key}: {raw!r} is not a JSON value") from None
        publishing.save_strategy_config(strategy_id, overrides, user=username(request))
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Saved the global tuning of {strategy_id}.")
    return redirect(reverse("admin:recsys_tuning"))


@requires(VIEW_TUNING)
def interest_settings(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        if not request.user.has_perm(PUBLISH):
            return render(request, "admin/recsys/denied.html", {"perm": PUBLISH}, "Permission needed")
        try:
            row = publishing.publish_interest_config(interest_config_from_post(request.POST), user=username(request),
                                                 note=request.POST.get("note", ""))
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            messages.success(request, f"Published {row}. New events fold with it; "
                                      "`manage.py recsys_replay` re-applies it to the history.")
            return redirect(reverse("admin:recsys_interest_settings"))
    return render(request, "admin/recsys/tuning/interest.html",
                  {"current": selectors.interest_settings(), "error": error,
                   "history": publishing.interest_history()}, "Interest model settings")




@require_POST
@requires(PUBLISH)
def rollback_interest(request: HttpRequest, version: int) -> HttpResponse:
    try:
        row = publishing.rollback_interest_config(version, user=username(request))
    except InterestConfig.DoesNotExist:
        raise Http404(f"no interest settings version {version}") from None
    messages.success(request, f"Rolled back: {row} carries v{version}'s settings.")
    return redirect(reverse("admin:recsys_interest_settings"))
