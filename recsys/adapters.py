"""How a host site's own models become catalogue items.

``recsys.register(Product, title="name", text=lambda p: p.description, categories="tags")``
or an ``ItemAdapter`` subclass listed in ``LIVEREC["ITEM_ADAPTERS"]``. Saving a registered
object upserts its item and re-embeds it when its text changed.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from django.db import models

from .itemtext import DEFAULT_FIELDS, validate

Getter = str | Callable[[Any], Any] | None

_registry: dict[type[models.Model], "ItemAdapter"] = {}


def _get(obj: Any, getter: Getter, default: Any = "") -> Any:
    if getter is None:
        return default
    if callable(getter):
        return getter(obj)
    value = getattr(obj, getter)
    return value() if callable(value) else value


def split_categories(value: Any, separators: str = ",") -> list[str]:
    """A string split on each of ``separators`` (whitespace around each part trimmed, empty
    parts dropped); any other iterable as a list; None as no category."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = [value]
        for sep in separators:
            parts = [piece for part in parts for piece in part.split(sep)]
        return [p.strip() for p in parts if p.strip()]
    return list(value)


class ItemAdapter:
    """Maps one host model to items. Override the attributes or the methods."""

    model: type[models.Model]
    item_id: Getter = "pk"
    title: Getter = None
    text: Getter = None
    categories: Getter = None
    url: Getter = None
    available: Getter = None
    properties: Getter = None
    #: Extra queryset filters ({"field": value}) for items this adapter may recommend.
    filters: dict[str, Any] = {}
    #: When ``categories`` gives a string, the characters that separate one category from the
    #: next: "running shoes, trail" is ["running shoes", "trail"]. Add " " for space-separated
    #: tags. A list or tuple is taken as it is.
    category_separators: str = ","
    #: The item fields the encoder embeds, in order ("title", "text", "categories",
    #: "properties"); dates are always left out (``recsys.itemtext``).
    text_fields: tuple[str, ...] = ("title", "text", "categories")

    def label(self) -> str:
        return f"{self.model._meta.app_label}.{self.model._meta.model_name}"

    def to_item(self, obj: models.Model) -> dict[str, Any]:
        cats = split_categories(_get(obj, self.categories, []), self.category_separators)
        url = _get(obj, self.url, "")
        if not url and hasattr(obj, "get_absolute_url"):
            url = obj.get_absolute_url()
        return {
            "item_id": str(_get(obj, self.item_id)),
            "title": str(_get(obj, self.title, "") or "")[:512],
            "text": str(_get(obj, self.text, "") or ""),
            "categories": [str(c)[:64] for c in cats],
            "url": url or "",
            "available": bool(_get(obj, self.available, True)),
            "properties": _get(obj, self.properties, {}) or {},
            "source": self.label(),
        }

    def queryset(self):
        return self.model._default_manager.filter(**self.filters)

    #: The host field that holds the item id, for filtering by id in SQL. Defaults to
    #: ``item_id`` when that is a field name; set it when ``item_id`` is a callable.
    item_id_lookup: str = ""

    def matching_item_ids(self, item_ids: set[str], lookups: dict[str, Any] | None = None) -> set[str]:
        """Which of ``item_ids`` belong to host objects in ``queryset()`` that also match
        ``lookups`` (a slot's ``filters["host"]``). One query when the id field is known."""
        qs = self.queryset().filter(**(lookups or {}))
        field = self.item_id_lookup or (self.item_id if isinstance(self.item_id, str) else "")
        if field:
            return {str(v) for v in qs.filter(**{f"{field}__in": list(item_ids)}).values_list(field, flat=True)}
        # A callable id without a lookup field: map every matching host object (slow on big catalogues).
        return {iid for iid in (str(_get(obj, self.item_id)) for obj in qs.iterator(chunk_size=2000)) if iid in item_ids}


def register(model: type[models.Model], *, item_id: Getter = "pk", title: Getter = None, text: Getter = None,
             categories: Getter = None, url: Getter = None, available: Getter = None,
             properties: Getter = None, filters: dict[str, Any] | None = None,
             category_separators: str = ",", text_fields: tuple[str, ...] = ItemAdapter.text_fields) -> ItemAdapter:
    """Register a host model as an item source (call from your AppConfig.ready())."""
    attrs = dict(model=model, item_id=item_id, title=title, text=text, categories=categories, url=url,
                 available=available, properties=properties, filters=filters or {},
                 category_separators=category_separators, text_fields=tuple(text_fields))
    adapter_cls = type(f"{model.__name__}Adapter", (ItemAdapter,), {k: staticmethod(v) if callable(v) else v
                                                                    for k, v in attrs.items()})
    adapter_cls.model = model
    return register_adapter(adapter_cls())


def register_adapter(adapter: ItemAdapter) -> ItemAdapter:
    """Mirror ``adapter.model`` into the catalogue: saves and deletes of its rows reach
    ``recsys.services.items`` through the receivers that ``RecsysConfig.ready()`` connects."""
    validate(adapter.text_fields, type(adapter).__name__)
    _registry[adapter.model] = adapter
    return adapter


def unregister(model: type[models.Model]) -> None:
    """Stop mirroring a host model (tests, or a site that swaps its adapter)."""
    _registry.pop(model, None)


def adapter_for(model: type[models.Model]) -> ItemAdapter | None:
    return _registry.get(model)


def adapters() -> list[ItemAdapter]:
    return list(_registry.values())


def text_fields_for(source: str) -> Sequence[str]:
    """The text fields of the adapter whose label is ``source`` (an item's ``source``), else
    the defaults (``recsys.itemtext``)."""
    for adapter in adapters():
        if adapter.label() == source:
            return adapter.text_fields
    return DEFAULT_FIELDS
