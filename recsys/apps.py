from django.apps import AppConfig


class RecsysConfig(AppConfig):
    name = "recsys"
    label = "recsys"
    verbose_name = "LiveRec recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: its modules import models, which exist only once the registry is ready.
        from . import startup

        startup.connect()
