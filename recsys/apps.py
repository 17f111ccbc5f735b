from django.apps import AppConfig


class RecsysConfig(AppConfig):
    name = "recsys"
    label = "recsys"
    verbose_name = "LiveRec recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tracking import hooks

        from . import checks  # noqa: F401  (registers the system checks)
        from .adapters import register_adapter
        from .conf import settings
        from .services.events import on_events_appended
        from .strategies import registry

        for strategy in settings.STRATEGIES:
            registry.register(strategy)
        for adapter_cls in settings.ITEM_ADAPTERS:
            register_adapter(adapter_cls())
        hooks.subscribe(on_events_appended)
        from .services.privacy import export_profile, forget_profile

        hooks.on_export(export_profile)
        hooks.on_forget(forget_profile)
