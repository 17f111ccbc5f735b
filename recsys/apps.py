from django.apps import AppConfig


class RecsysConfig(AppConfig):
    name = "recsys"
    label = "recsys"
    verbose_name = "LiveRec recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracking import hooks
        from tracking import privacy as tracking_privacy

        from . import checks  # noqa: F401  (registers the system checks)
        from . import configcache, priority
        from .adapters import register_adapter
        from .conf import settings
        from .services import privacy
        from .services.events import on_events_appended_later
        from .strategies import registry

        for strategy in settings.STRATEGIES:
            registry.register(strategy)
        for adapter_cls in settings.ITEM_ADAPTERS:
            register_adapter(adapter_cls())
        hooks.subscribe(on_events_appended_later)
        hooks.subscribe_erased(privacy.on_erased)  # retention: rebuild from the remaining events
        hooks.subscribe_expired(privacy.on_expired)
        for store in privacy.STORES:  # forget and export loop over these (tracking.privacy)
            tracking_privacy.register_store(store())
        configcache.connect()
        priority.connect()
