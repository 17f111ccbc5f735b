"""Offline evaluation runs started from the admin: a Celery job around ``recsys_evaluate``.

Contract with the command (the evaluation issue owns it): options are passed by keyword
from ``EvaluationRun.params``; progress is read from its output (lines holding ``NN%``
or ``progress 0.NN``); its result is the last line of its stdout that parses as a JSON
object (``{"rows": [{"model": ..., "HR@10": ...}, ...], ...}``), else the raw text is kept.
"""
from __future__ import annotations

import io
import json
import re
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import call_command, get_commands
from django.db import transaction
from django.utils import timezone

from ..models import EvaluationRun
from . import audit, dispatch

COMMAND = "recsys_evaluate"
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)%|progress[ :=]+(0?\.\d+|1(?:\.0+)?)")
# Progress writes are throttled: a tqdm bar prints many times a second.
PROGRESS_EVERY_S = 1.0


def command_available() -> bool:
    return COMMAND in get_commands()


def start_run(params: dict[str, Any], *, user: str) -> EvaluationRun:
    if not isinstance(params, dict):
        raise ValidationError("parameters are a JSON object of command options")
    if not command_available():
        raise ValidationError(f"the {COMMAND!r} management command is not installed")
    run_evaluation = dispatch.task("run_evaluation")

    with transaction.atomic():
        run = EvaluationRun.objects.create(params=params, created_by=user)
        audit.record(user, "start_evaluation", str(run), {"params": params})
        run_evaluation.delay_on_commit(run.pk)
    return run


class _ProgressStream(io.StringIO):
    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.last = 0.0

    def write(self, s: str) -> int:
        matches = list(_PERCENT.finditer(s))
        m = matches[-1] if matches else None  # the newest progress figure in this write
        now = time.monotonic()
        if m is not None and now - self.last >= PROGRESS_EVERY_S:
            value = float(m.group(1)) / 100 if m.group(1) else float(m.group(2))
            EvaluationRun.objects.filter(pk=self.run_id).update(progress=max(0.0, min(1.0, value)))
            self.last = now
        return super().write(s)


def parse_results(output: str) -> dict[str, Any]:
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    return {"text": output[-20000:]}


def execute_run(run_id: int) -> str:
    """Run the command for a queued run; idempotent (a finished or running run is left alone)."""
    claimed = EvaluationRun.objects.filter(pk=run_id, status=EvaluationRun.Status.QUEUED).update(
        status=EvaluationRun.Status.RUNNING)
    if not claimed:
        return "skipped"
    run = EvaluationRun.objects.get(pk=run_id)
    out, err = _ProgressStream(run_id), io.StringIO()
    try:
        call_command(COMMAND, stdout=out, stderr=err, **run.params)
    except Exception as exc:  # noqa: BLE001 - any failure is the run's result, shown on its page
        EvaluationRun.objects.filter(pk=run_id).update(
            status=EvaluationRun.Status.FAILED, finished_at=timezone.now(),
            log=(out.getvalue() + err.getvalue() + f"\n{type(exc).__name__}: {exc}")[-20000:])
        return "failed"
    EvaluationRun.objects.filter(pk=run_id).update(
        status=EvaluationRun.Status.DONE, progress=1.0, finished_at=timezone.now(),
        results=parse_results(out.getvalue()), log=err.getvalue()[-20000:])
    return "done"


def result_rows(run: EvaluationRun) -> list[dict[str, Any]]:
    rows = run.results.get("rows") if isinstance(run.results, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
