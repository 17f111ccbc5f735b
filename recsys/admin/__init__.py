"""The recsys admin: model rows (``model_admins``) and the staff tool pages (``tools``: tuning,
visitors, dashboard, experiments, evaluation), all under the recsys section of the admin."""
from __future__ import annotations

from django.contrib import admin

from . import model_admins  # noqa: F401  (registers the ModelAdmins)
from .tools import register_tools

register_tools(admin.site)
