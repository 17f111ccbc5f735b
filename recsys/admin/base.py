"""Shared plumbing of the admin tool pages: the admin chrome and per-action permissions."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

PUBLISH = "recsys.publish_slotconfig"
MANAGE_EXPERIMENT = "recsys.manage_experiment"
RUN_EVALUATION = "recsys.run_evaluation"
EXPORT_VISITOR = "recsys.export_visitor"
FORGET_VISITOR = "recsys.forget_visitor"
VIEW_TUNING = "recsys.view_slotconfig"
VIEW_VISITORS = "recsys.view_visitorprofile"
VIEW_EXPERIMENTS = "recsys.view_experiment"
VIEW_EVALUATION = "recsys.view_evaluationrun"
VIEW_DASHBOARD = "recsys.view_dashboard"


def requires(perm: str) -> Callable:
    """403 unless the (already staff-checked, see AdminSite.admin_view) user has ``perm``."""
    def deco(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(perm):
                raise PermissionDenied(f"needs the {perm} permission")
            return view(request, *args, **kwargs)
        return wrapped
    return deco


def render(request: HttpRequest, template: str, context: dict[str, Any], title: str) -> TemplateResponse:
    ctx = {**admin.site.each_context(request), "title": title, "opts": None, **context}
    ctx["perms_publish"] = request.user.has_perm(PUBLISH)
    return TemplateResponse(request, template, ctx)


def username(request: HttpRequest) -> str:
    return request.user.get_username()
