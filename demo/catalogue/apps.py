from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "demo.catalogue"
    label = "catalogue"
    verbose_name = "Demo film catalogue"
    default_auto_field = "django.db.models.BigAutoField"
