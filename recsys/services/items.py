"""The catalogue projection: upserts from host models or events, embeddings in batches."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from django.db import transaction

from ..encoders import get_encoder
from ..models import Item
from .vectors import ensure_hnsw_index

# Measured: all-MiniLM-L6-v2 on one thread encodes ~300-400 short titles/s; 64 per
# batch amortises tokenizer and Python overhead without holding a task for long.
EMBED_BATCH = 64


def upsert_item(data: dict[str, Any], *, embed: bool = True) -> Item:
    """Create or update one item; enqueue its embedding (after commit) when its text changed."""
    item_id = data["item_id"]
    fields = {k: v for k, v in data.items() if k != "item_id"}
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(item_id=item_id).first()
        if item is None:
            item = Item.objects.create(item_id=item_id, **fields)
            changed = True
        else:
            before = item.embedding_text()
            for key, value in fields.items():
                setattr(item, key, value)
            item.save()
            changed = before != item.embedding_text() or item.embedding is None
        if changed and embed:
            from ..tasks import embed_items

            transaction.on_commit(lambda: embed_items.delay([item.pk]))
    return item


def ensure_items_from_events(rows: Iterable[tuple[str, dict]]) -> None:
    """Items seen only in events are created from the event's properties (title, category)."""
    for item_id, props in rows:
        if not item_id or Item.objects.filter(item_id=item_id).exists():
            continue
        title = str(props.get("title") or props.get("item_title") or "")[:512]
        cat = props.get("category")
        upsert_item({"item_id": item_id, "title": title, "categories": [str(cat)[:64]] if cat else [],
                     "source": "events"}, embed=bool(title))


def on_host_saved(sender, instance, **kwargs) -> None:
    from ..adapters import adapter_for

    adapter = adapter_for(sender)
    if adapter is not None:
        upsert_item(adapter.to_item(instance))


def on_host_deleted(sender, instance, **kwargs) -> None:
    from ..adapters import adapter_for

    adapter = adapter_for(sender)
    if adapter is not None:
        Item.objects.filter(item_id=str(adapter.to_item(instance)["item_id"])).update(available=False)


def embed_items(item_pks: Sequence[int]) -> int:
    """Embed these items with the configured encoder; returns how many were written."""
    encoder = get_encoder()
    items = list(Item.objects.filter(pk__in=item_pks).only("pk", "title", "text", "categories"))
    if not items:
        return 0
    vectors = encoder.encode([it.embedding_text() for it in items])
    for it, vec in zip(items, vectors):
        it.embedding = vec
        it.embedding_model = encoder.name
    Item.objects.bulk_update(items, ["embedding", "embedding_model"], batch_size=500)
    ensure_hnsw_index(encoder.dim)
    return len(items)


def stale_item_pks() -> list[int]:
    """Items without an embedding from the current encoder (new, or after a backend switch)."""
    name = get_encoder().name
    return list(Item.objects.exclude(embedding_model=name).values_list("pk", flat=True).order_by("pk"))


def sync_from_adapters() -> int:
    """Upsert every registered host object into the catalogue in bulk (no per-row signals)."""
    from ..adapters import adapters

    total = 0
    for adapter in adapters():
        rows = [adapter.to_item(obj) for obj in adapter.queryset().iterator(chunk_size=2000)]
        objs = [Item(**row) for row in rows]
        Item.objects.bulk_create(objs, batch_size=1000, update_conflicts=True, unique_fields=["item_id"],
                                 update_fields=["title", "text", "categories", "url", "available", "properties", "source"])
        total += len(objs)
    return total


def enqueue_embedding(item_pks: Sequence[int]) -> int:
    """Send the items to the batch worker in EMBED_BATCH chunks; returns tasks sent."""
    from ..tasks import embed_items as task

    pks = list(item_pks)
    for start in range(0, len(pks), EMBED_BATCH):
        task.delay(pks[start:start + EMBED_BATCH])
    return (len(pks) + EMBED_BATCH - 1) // EMBED_BATCH


def embedded_count() -> int:
    return Item.objects.filter(embedding_model=get_encoder().name).count()
