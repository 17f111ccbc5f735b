"""A/B experiments: create, start, stop, report with Wilson intervals, promote the winner."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..models import Experiment, SlotConfig
from ..services import experiments as service
from ..services import publishing
from ..stats import experiment_report
from .base import MANAGE_EXPERIMENT, VIEW_EXPERIMENTS, render, requires, username
from .charts import interval_chart
from .forms import arms_from_post


@requires(VIEW_EXPERIMENTS)
def listing(request: HttpRequest) -> HttpResponse:
    error = None
    form = {"name": "", "slot": ""}
    if request.method == "POST":
        if not request.user.has_perm(MANAGE_EXPERIMENT):
            return render(request, "admin/recsys/denied.html", {"perm": MANAGE_EXPERIMENT}, "Permission needed")
        form = {"name": request.POST.get("name", ""), "slot": request.POST.get("slot", "")}
        try:
            arms = arms_from_post(request.POST)
            for arm in arms:
                if arm.pop("source", "") == "live":
                    arm["config"] = publishing.live_slot_config(form["slot"])
            exp = service.create_experiment(form["name"], form["slot"], arms, user=username(request))
        except (ValidationError, KeyError) as exc:
            error = "; ".join(getattr(exc, "messages", [str(exc)]))
        else:
            messages.success(request, f"Created experiment {exp.name} (draft).")
            return redirect(reverse("admin:recsys_experiment_report", args=[exp.pk]))
    versions = {slot: list(SlotConfig.objects.filter(slot=slot).values_list("version", flat=True))
                for slot in publishing.slot_names()}
    return render(request, "admin/recsys/experiments/list.html",
                  {"experiments": Experiment.objects.all(), "slots": publishing.slot_names(), "versions": versions,
                   "error": error, "form": form, "arm_rows": range(3),
                   "can_manage": request.user.has_perm(MANAGE_EXPERIMENT)}, "A/B experiments")


@requires(VIEW_EXPERIMENTS)
def report(request: HttpRequest, pk: int) -> HttpResponse:
    exp = get_object_or_404(Experiment, pk=pk)
    rows = experiment_report(exp)
    chart = interval_chart([(r["name"], r["ctr"], r["low"] or 0.0, r["high"] or 0.0) for r in rows],
                           title="Click-through per arm, 95% Wilson interval")
    return render(request, "admin/recsys/experiments/report.html",
                  {"exp": exp, "rows": rows, "chart": chart, "can_manage": request.user.has_perm(MANAGE_EXPERIMENT)},
                  f"Experiment {exp.name}")


@require_POST
@requires(MANAGE_EXPERIMENT)
def action(request: HttpRequest, pk: int) -> HttpResponse:
    user, what = username(request), request.POST.get("action")
    try:
        if what == "start":
            service.start_experiment(pk, user=user)
        elif what == "stop":
            service.stop_experiment(pk, user=user)
        elif what == "promote":
            row = service.promote_arm(pk, request.POST.get("arm", ""), user=user)
            messages.success(request, f"Published the winner as {row}.")
        else:
            raise ValidationError(f"unknown action {what!r}; actions: start, stop, promote")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except Experiment.DoesNotExist:
        messages.error(request, "no such experiment")
    return redirect(reverse("admin:recsys_experiment_report", args=[pk]))
