from django.contrib import admin

from .models import Item, ProjectionCursor, VisitorProfile


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("item_id", "title", "available", "embedding_model", "updated_at")
    search_fields = ("item_id", "title")
    list_filter = ("available", "source", "embedding_model")
    exclude = ("embedding",)


@admin.register(VisitorProfile)
class VisitorProfileAdmin(admin.ModelAdmin):
    list_display = ("visitor_id", "user_id", "event_count", "rate_per_hour", "last_event_at")
    search_fields = ("visitor_id", "user_id")
    exclude = ("long_term", "short_term", "interests")


@admin.register(ProjectionCursor)
class ProjectionCursorAdmin(admin.ModelAdmin):
    list_display = ("name", "txid", "position", "updated_at")


# Readable interests (interests branch): topics, visitor topic shares, keyphrases.
from .models import CatalogueTopic, Keyphrase, VisitorTopics  # noqa: E402


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
