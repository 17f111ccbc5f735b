"""The catalogue projection: upserts from host models or events, embeddings in batches."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from django.db import transaction

from ..adapters import adapter_for, adapters
from ..encoders import get_encoder
from ..models import Item
from . import dispatch
from .projection import derived_write
from .vectors import binary_vector_cursor, drop_hnsw_index, ensure_hnsw_index, hnsw_index_exists

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
            transaction.on_commit(lambda: dispatch.task("embed_items").delay([item.pk]))
    return item


def ensure_items_from_events(rows: Iterable[tuple[str, dict]]) -> list[int]:
    """Items seen only in events are created from the event's properties (title, category).

    One query for the ids already known and one bulk insert for the rest (a projection
    batch can name hundreds of items). Returns the pks of the created items that have
    text to embed; the caller embeds them before folding so the events count at once.
    """
    props_by_id: dict[str, dict] = {}
    for item_id, props in rows:
        if item_id and item_id not in props_by_id:
            props_by_id[item_id] = props or {}
    if not props_by_id:
        return []
    known = set(Item.objects.filter(item_id__in=list(props_by_id)).values_list("item_id", flat=True))
    new = []
    for item_id, props in props_by_id.items():
        if item_id in known:
            continue
        title = str(props.get("title") or props.get("item_title") or "")[:512]
        cat = props.get("category") or props.get("categories") or []
        cats = [cat] if isinstance(cat, str) else list(cat) if isinstance(cat, (list, tuple)) else []
        new.append(Item(item_id=item_id, title=title, categories=[str(c)[:64] for c in cats if c],
                        url=str(props.get("url") or "")[:512], source="events"))
    if not new:
        return []
    Item.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return list(Item.objects.filter(item_id__in=[i.item_id for i in new], source="events", embedding__isnull=True)
                .exclude(title="").values_list("pk", flat=True))


def on_host_saved(sender, instance, **kwargs) -> None:
    """post_save of any model (connected once, without a sender, in ``RecsysConfig.ready()``):
    a dict lookup for models that are not a catalogue source."""
    adapter = adapter_for(sender)
    if adapter is not None:
        upsert_item(adapter.to_item(instance))


def on_host_deleted(sender, instance, **kwargs) -> None:
    adapter = adapter_for(sender)
    if adapter is not None:
        Item.objects.filter(item_id=str(adapter.to_item(instance)["item_id"])).update(available=False)


def embed_items(item_pks: Sequence[int], *, index: bool = True) -> int:
    """Embed these items with the configured encoder; returns how many were written.

    ``index=False`` during a bulk (re-)embedding: the HNSW index of that dimension is
    dropped beforehand and built once at the end (``finish_bulk_embedding``).
    """
    encoder = get_encoder()
    items = list(Item.objects.filter(pk__in=item_pks).only("pk", "title", "text", "categories", "source"))
    if not items:
        return 0
    vectors = encoder.encode([it.embedding_text() for it in items], batch_size=EMBED_BATCH)
    write_vectors([it.pk for it in items], vectors, encoder.name)
    if index:
        ensure_hnsw_index(encoder.dim)
    return len(items)


def write_vectors(pks: Sequence[int], vectors, model_name: str) -> None:
    """Binary COPY of (pk, vector) into a temporary table, then one UPDATE ... FROM it.

    Measured on 64 rows (384-d), no HNSW index, under load: Django's bulk_update (a CASE per
    row) 230 ms; UPDATE ... FROM unnest() of text literals 84 ms, of which ~50 ms was repr()
    of 24,576 floats and ~20 ms the commit's wait for the WAL flush. COPY sends each vector
    as its float32 bytes (pgvector's binary format). An item's vector is derived from its
    text (``recsys_embed`` rebuilds it), so the commit does not wait for the flush. With the
    HNSW index present every variant costs ~900 ms (index inserts dominate, hence the bulk
    mode that builds the index once at the end).
    """
    import numpy as np
    from pgvector import Vector


    with transaction.atomic():
        derived_write()
        with binary_vector_cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS liverec_new_vectors "
                           "(id bigint PRIMARY KEY, e vector) ON COMMIT DELETE ROWS")
            with cursor.copy("COPY liverec_new_vectors (id, e) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector"])
                for pk, vec in zip(pks, vectors):
                    copy.write_row((pk, Vector(np.asarray(vec, dtype=np.float32))))
            cursor.execute(
                f"UPDATE {Item._meta.db_table} AS i SET embedding = u.e, embedding_model = %s, updated_at = now() "
                "FROM liverec_new_vectors AS u WHERE i.id = u.id", [model_name])


def stale_item_pks() -> list[int]:
    """Items without an embedding from the current encoder (new, or after a backend switch)."""
    name = get_encoder().name
    return list(Item.objects.exclude(embedding_model=name).values_list("pk", flat=True).order_by("pk"))


def sync_from_adapters() -> int:
    """Upsert every registered host object into the catalogue in bulk (no per-row signals)."""
    total = 0
    for adapter in adapters():
        rows = [adapter.to_item(obj) for obj in adapter.queryset().iterator(chunk_size=2000)]
        objs = [Item(**row) for row in rows]
        Item.objects.bulk_create(objs, batch_size=1000, update_conflicts=True, unique_fields=["item_id"],
                                 update_fields=["title", "text", "categories", "url", "available", "properties", "source"])
        total += len(objs)
    return total


# Above this many items an embedding run drops the HNSW index and builds it once at the
# end. Measured: each HNSW insert costs ~10 ms (64 rows: 900 ms with the index, 160 ms
# without) while building the index over 1,682 rows takes ~2 s.
BULK_INDEX_THRESHOLD = 200


def enqueue_embedding(item_pks: Sequence[int]) -> int:
    """Send the items to the batch worker in EMBED_BATCH chunks; returns tasks sent.

    Big runs (a backend switch, ``recsys_embed --all``) go in bulk mode: no index
    maintenance per row, one index build when every item carries the new vector.
    """
    task = dispatch.task("embed_items")
    finish_bulk_embedding = dispatch.task("finish_bulk_embedding")

    pks = _by_text_length(item_pks)
    bulk = len(pks) > BULK_INDEX_THRESHOLD
    if bulk:
        drop_hnsw_index(get_encoder().dim)
    for start in range(0, len(pks), EMBED_BATCH):
        task.delay(pks[start:start + EMBED_BATCH], index=not bulk)
    if bulk:
        finish_bulk_embedding.delay()
    return (len(pks) + EMBED_BATCH - 1) // EMBED_BATCH


def _by_text_length(item_pks: Sequence[int]) -> list[int]:
    """The items ordered by the length of their embedding text, so each chunk holds texts of
    similar length. A transformer pads a batch to its longest text: chunks in primary-key
    order mixed short and long texts and cost the worker ~35% more compute per item than
    one ``model.encode`` of the whole catalogue, which sorts by length (bench_embed)."""
    from django.db.models.functions import Coalesce, Length

    pks = list(item_pks)
    if len(pks) <= EMBED_BATCH:
        return pks
    lengths = dict(Item.objects.filter(pk__in=pks).annotate(
        n=Length("title") + Coalesce(Length("text"), 0)).values_list("pk", "n"))
    return sorted(pks, key=lambda pk: (lengths.get(pk, 0), pk))


def finish_bulk_embedding() -> bool:
    """Build the HNSW index once no item awaits a vector; False while some still do."""
    if Item.objects.exclude(embedding_model=get_encoder().name).exists():
        return False
    ensure_hnsw_index(get_encoder().dim)
    return True


def embedded_count() -> int:
    return Item.objects.filter(embedding_model=get_encoder().name).count()


def index_ready() -> bool:
    return hnsw_index_exists(get_encoder().dim)
