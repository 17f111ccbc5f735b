"""Offline evaluation runs: start one (a Celery job), watch progress, compare results over runs."""
from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from ..models import EvaluationRun
from ..services import evaluation_jobs as service
from .base import RUN_EVALUATION, VIEW_EVALUATION, render, requires, username
from .charts import bar_chart


def _metric_columns(runs: list[EvaluationRun]) -> list[str]:
    cols: list[str] = []
    for run in runs:
        for row in service.result_rows(run):
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in cols:
                    cols.append(key)
    return cols


@requires(VIEW_EVALUATION)
def runs(request: HttpRequest) -> HttpResponse:
    error = None
    params_text = request.POST.get("params", '{"protocol": "loo"}') if request.method == "POST" else '{"protocol": "loo"}'
    if request.method == "POST":
        if not request.user.has_perm(RUN_EVALUATION):
            return render(request, "admin/recsys/denied.html", {"perm": RUN_EVALUATION}, "Permission needed")
        try:
            try:
                params = json.loads(params_text or "{}")
            except ValueError:
                raise ValidationError("parameters must be a JSON object, e.g. {\"protocol\": \"loo\"}") from None
            run = service.start_run(params, user=username(request))
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            messages.success(request, f"Queued {run}.")
            return redirect(reverse("admin:recsys_evaluations"))
    recent = list(EvaluationRun.objects.all()[:30])
    cols = _metric_columns(recent)
    table = []
    for run in recent:
        for row in service.result_rows(run):
            table.append({"run": run, "label": str(row.get("model") or row.get("name") or ""),
                          "values": [row.get(c) for c in cols]})
    chart_metric = request.GET.get("metric") or (cols[0] if cols else "")
    chart = bar_chart([(f"#{t['run'].pk} {t['label']}", t["values"][cols.index(chart_metric)])
                       for t in table if chart_metric in cols], title=f"{chart_metric} per run and model") if cols else ""
    return render(request, "admin/recsys/evaluation/runs.html",
                  {"runs": recent, "cols": cols, "table": table, "chart": chart, "chart_metric": chart_metric,
                   "params_text": params_text, "error": error, "available": service.command_available(),
                   "can_run": request.user.has_perm(RUN_EVALUATION)}, "Offline evaluation")


@requires(VIEW_EVALUATION)
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(EvaluationRun, pk=pk)
    return JsonResponse({"id": run.pk, "status": run.status, "progress": run.progress})
