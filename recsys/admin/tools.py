"""The admin tuning UI's registration: each tool is the changelist of a recsys model, so it sits
in the recsys section of the admin index with the admin's own permissions, and every page is
wrapped by ``AdminSite.admin_view`` (staff login, CSRF, never cached)."""
from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import dashboard, evaluation_pages, experiments, tuning_pages, visitors
from ..models import AuditEntry, Dashboard, EvaluationRun, Experiment, InterestConfig, SlotConfig, StrategyConfig


def visitor_urls(site: admin.AdminSite) -> list:
    w = site.admin_view
    return [
        path("inspect/", w(visitors.search), name="recsys_visitors"),
        path("inspect/<str:visitor_id>/", w(visitors.inspect), name="recsys_visitor"),
        path("inspect/<str:visitor_id>/export/", w(visitors.export), name="recsys_visitor_export"),
        path("inspect/<str:visitor_id>/forget/", w(visitors.forget), name="recsys_visitor_forget"),
    ]


class ToolAdmin(admin.ModelAdmin):
    """A model whose changelist is a tool page; its rows are written only through services."""

    tool_view = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return type(self).tool_view(request)

    def extra_urls(self, site) -> list:
        return []

    def get_urls(self):
        return self.extra_urls(self.admin_site) + super().get_urls()


class SlotConfigAdmin(ToolAdmin):
    tool_view = staticmethod(tuning_pages.overview)

    def extra_urls(self, site):
        w = site.admin_view
        return [
            path("", w(tuning_pages.overview), name="recsys_tuning"),
            path("interest/", w(tuning_pages.interest_settings), name="recsys_interest_settings"),
            path("interest/rollback/<int:version>/", w(tuning_pages.rollback_interest), name="recsys_interest_rollback"),
            path("strategy/<path:strategy_id>/save/", w(tuning_pages.save_strategy), name="recsys_save_strategy"),
            path("slot/<str:slot>/", w(tuning_pages.edit_slot), name="recsys_tune_slot"),
            path("slot/<str:slot>/preview/", w(tuning_pages.preview), name="recsys_tune_preview"),
            path("slot/<str:slot>/rollback/<int:version>/", w(tuning_pages.rollback), name="recsys_tune_rollback"),
        ]


class StrategyConfigAdmin(ToolAdmin):
    tool_view = staticmethod(tuning_pages.overview)


class InterestConfigAdmin(ToolAdmin):
    tool_view = staticmethod(tuning_pages.interest_settings)


class ExperimentAdmin(ToolAdmin):
    tool_view = staticmethod(experiments.listing)

    def extra_urls(self, site):
        w = site.admin_view
        return [
            path("", w(experiments.listing), name="recsys_experiments"),
            path("<int:pk>/report/", w(experiments.report), name="recsys_experiment_report"),
            path("<int:pk>/action/", w(experiments.action), name="recsys_experiment_action"),
        ]


class EvaluationRunAdmin(ToolAdmin):
    tool_view = staticmethod(evaluation_pages.runs)

    def extra_urls(self, site):
        w = site.admin_view
        return [
            path("", w(evaluation_pages.runs), name="recsys_evaluations"),
            path("<int:pk>/status/", w(evaluation_pages.run_status), name="recsys_evaluation_status"),
        ]


class DashboardAdmin(ToolAdmin):
    tool_view = staticmethod(dashboard.dashboard)

    def extra_urls(self, site):
        return [path("", site.admin_view(dashboard.dashboard), name="recsys_dashboard")]


class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail: read-only."""

    list_display = ("at", "user", "action", "object_repr")
    list_filter = ("action",)
    search_fields = ("user", "object_repr", "action")
    readonly_fields = ("at", "user", "action", "object_repr", "diff")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def register_tools(site: admin.AdminSite) -> None:
    for model, model_admin in ((SlotConfig, SlotConfigAdmin), (StrategyConfig, StrategyConfigAdmin),
                               (InterestConfig, InterestConfigAdmin), (Experiment, ExperimentAdmin),
                               (EvaluationRun, EvaluationRunAdmin), (Dashboard, DashboardAdmin),
                               (AuditEntry, AuditEntryAdmin)):
        if not site.is_registered(model):
            site.register(model, model_admin)
