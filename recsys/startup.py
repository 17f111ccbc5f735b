"""What ``RecsysConfig.ready()`` connects, once the app registry is ready: the strategy and
adapter registries from ``LIVEREC``, the event log's hooks, the per-visitor stores that forget
and export loop over, catalogue mirroring, the config cache's invalidation and the system
checks."""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from tracking import hooks
from tracking import privacy as tracking_privacy

from . import checks  # noqa: F401  (registers the system checks)
from . import configcache
from .adapters import register_adapter
from .conf import settings
from .services import items, privacy
from .services.events import on_events_appended_later
from .strategies import registry


def connect() -> None:
    for strategy in settings.STRATEGIES:
        registry.register(strategy)
    for adapter_cls in settings.ITEM_ADAPTERS:
        register_adapter(adapter_cls())
    hooks.subscribe(on_events_appended_later)
    # Catalogue sources can be registered after this (a site's own ready()): one receiver for
    # every model, which looks the sender up in the adapter registry.
    post_save.connect(items.on_host_saved, dispatch_uid="liverec-host-save")
    post_delete.connect(items.on_host_deleted, dispatch_uid="liverec-host-delete")
    hooks.subscribe_erased(privacy.on_erased)  # retention: rebuild from the remaining events
    hooks.subscribe_expired(privacy.on_expired)
    for store in privacy.STORES:  # forget and export loop over these (tracking.privacy)
        tracking_privacy.register_store(store())
    configcache.connect()
