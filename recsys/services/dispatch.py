"""Enqueue recsys's Celery tasks by name.

Tasks call services, so a service never imports ``recsys.tasks``: it asks for a task here, by
its name, and the layers keep pointing one way (views, consumers, tasks -> services -> models).
The task object comes from Celery's registry, so its queue and options are the ones its
``@shared_task`` declares.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

TASKS_MODULE = "recsys.tasks"


def task(name: str) -> Any:
    """The registered task ``recsys.tasks.<name>`` (``.delay``, ``.apply_async``, ...)."""
    from celery import current_app

    full = f"{TASKS_MODULE}.{name}"
    registry = current_app.tasks
    if full not in registry:
        # A process whose Celery app did not autodiscover (a site's shell, a management
        # command): registering the module's shared tasks is all the import does.
        import_module(TASKS_MODULE)
    return registry[full]
