# mysite/urls.py
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("liverec/", include("liverec.urls")),
    path("", include("products.urls")),
]
