from django.urls import path

from . import views

app_name = "recsys"
urlpatterns = [
    path("health/", views.health, name="health"),
    path("recs/<slug:slot>/", views.recommendations, name="recommendations"),
    path("search/", views.search, name="search"),
]
