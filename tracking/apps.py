from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    label = "tracking"
    verbose_name = "LiveRec tracking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
