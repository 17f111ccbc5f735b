from django.urls import path

from . import views

app_name = "catalogue"
urlpatterns = [
    path("", views.film_list, name="list"),
    path("films/<int:ml_id>/", views.film_detail, name="film"),
]
