from django.urls import path

from . import views

app_name = "tracking"
urlpatterns = [
    path("events/", views.ingest, name="ingest"),
]
