from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    label = "tracking"
    verbose_name = "LiveRec tracking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: both import models, which exist only once the registry is ready.
        from . import checks  # noqa: F401  (registers the system checks)
        from . import privacy

        # tracking's own per-visitor stores; recsys registers its own in RecsysConfig.ready.
        privacy.register_store(privacy.EventStore())
        privacy.register_store(privacy.IngestStateStore())
