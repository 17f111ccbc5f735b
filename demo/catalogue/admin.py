from django.contrib import admin

from .models import Film


@admin.register(Film)
class FilmAdmin(admin.ModelAdmin):
    list_display = ("ml_id", "title", "year")
    search_fields = ("title",)
