from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    label = "tracking"
    verbose_name = "LiveRec tracking"
    default_auto_field = "django.db.models.BigAutoField"
