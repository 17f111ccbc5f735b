from django.contrib import admin

from .models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only."""

    list_display = ("occurred_at", "name", "visitor_id", "item_id", "session_id", "source", "is_bot")
    list_filter = ("name", "source", "is_bot")
    search_fields = ("visitor_id", "user_id", "item_id")
    date_hierarchy = "occurred_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
