"""ModelAdmins of the recsys models that staff browse as rows (items, profiles, cursors, the
serve log, topics, keyphrases); the tool pages are registered by ``recsys.admin.tools``."""
from __future__ import annotations

from django.contrib import admin

from ..models import (CatalogueTopic, Item, Keyphrase, ProjectionCursor, RecommendationLog, VisitorProfile,
                      VisitorTopics)
from .tools import visitor_urls


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("item_id", "title", "available", "embedding_model", "updated_at")
    search_fields = ("item_id", "title")
    list_filter = ("available", "source", "embedding_model")
    exclude = ("embedding",)


@admin.register(VisitorProfile)
class VisitorProfileAdmin(admin.ModelAdmin):
    list_display = ("visitor_id", "user_id", "event_count", "rate_per_hour", "last_event_at", "inspect_link")
    search_fields = ("visitor_id", "user_id")
    exclude = ("long_term", "short_term", "interests")

    @admin.display(description="inspector")
    def inspect_link(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        return format_html('<a href="{}">inspect</a>', reverse("admin:recsys_visitor", args=[obj.visitor_id]))

    def get_urls(self):
        return visitor_urls(self.admin_site) + super().get_urls()


@admin.register(ProjectionCursor)
class ProjectionCursorAdmin(admin.ModelAdmin):
    list_display = ("name", "txid", "position", "updated_at")


@admin.register(RecommendationLog)
class RecommendationLogAdmin(admin.ModelAdmin):
    list_display = ("rec_id", "visitor_id", "slot", "channel", "seq", "created_at")
    list_filter = ("slot", "channel")
    search_fields = ("rec_id", "visitor_id")
    readonly_fields = ("rec_id", "visitor_id", "slot", "channel", "seq", "items", "strategies", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CatalogueTopic)
class CatalogueTopicAdmin(admin.ModelAdmin):
    list_display = ("number", "label", "size", "embedding_model", "created_at")
    search_fields = ("label",)
    exclude = ("centroid",)


@admin.register(VisitorTopics)
class VisitorTopicsAdmin(admin.ModelAdmin):
    list_display = ("visitor_id", "top_topics", "updated_at")
    search_fields = ("visitor_id",)

    @admin.display(description="Topics")
    def top_topics(self, obj):
        labels = dict(CatalogueTopic.objects.values_list("number", "label"))
        parts = sorted(obj.distribution.items(), key=lambda kv: -kv[1])[:3]
        return "; ".join(f"{labels.get(int(n), n)} {share:.0%}" for n, share in parts)


@admin.register(Keyphrase)
class KeyphraseAdmin(admin.ModelAdmin):
    list_display = ("phrase", "doc_freq", "embedding_model")
    search_fields = ("phrase",)
    list_filter = ("embedding_model",)
    exclude = ("embedding",)
