"""``{% liverec_widget "for-you" limit=8 %}``: a server-rendered slot the widget script upgrades live."""
from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.html import format_html

from ..conf import settings
from ..engine import clean_context, recommend
from ..services.push import served_on_page, slot_key
from ..tokens import make_token

register = template.Library()


@register.simple_tag(takes_context=True)
def liverec_widget(context, slot: str = "for-you", limit: int = 8, item_id: str = "", title: str = "",
                   query: str = "", category: str = "") -> str:
    """Renders ``recommend(visitor, slot, limit, {"item_id", "query", "category"})`` server-side."""
    request = context["request"]
    visitor_id = getattr(request, "liverec_visitor_id", "")
    recs = recommend(visitor_id, slot, int(limit), clean_context({"item_id": item_id, "query": query,
                                                                   "category": category}))
    served_on_page(recs, slot_key(slot, str(item_id)))
    return render_to_string("liverec/widget.html", {
        "slot": slot, "limit": limit, "recs": recs, "token": make_token(visitor_id), "title": title,
        "item_id": item_id, "key": slot_key(slot, str(item_id)),
        "poll_ms": int(settings.WIDGET_POLL_SECONDS * 1000),
    }, request=request)


@register.simple_tag
def liverec_widget_script() -> str:
    return format_html('<script src="{}" defer></script>', static("recsys/widget.js"))
