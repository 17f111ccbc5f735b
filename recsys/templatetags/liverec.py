"""``{% liverec_widget "for-you" limit=8 %}``: a server-rendered slot the widget script upgrades live;
``{% liverec_widget_script %}``: the script and its default stylesheet, once per page."""
from __future__ import annotations

import re

from django import template
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.translation import gettext

from ..conf import settings
from ..engine import clean_context, recommend
from ..services.push import served_on_page, slot_key
from ..tokens import make_token

register = template.Library()


@register.simple_tag(takes_context=True)
def liverec_widget(context, slot: str = "for-you", limit: int = 8, item_id: str = "", title: str = "",
                   query: str = "", category: str = "", empty_text: str | None = None,
                   loading_text: str | None = None) -> str:
    """Renders ``recommend(visitor, slot, limit, {"item_id", "query", "category"})`` server-side,
    each item through ``liverec/item.html`` (the same markup widget.js fills for pushed lists).
    ``empty_text``/``loading_text``: what an empty list and a list awaiting its first live
    answer say."""
    request = context["request"]
    visitor_id = getattr(request, "liverec_visitor_id", "")
    recs = recommend(visitor_id, slot, int(limit), clean_context({"item_id": item_id, "query": query,
                                                                   "category": category}))
    served_on_page(recs, slot_key(slot, str(item_id)))
    return render_widget(request, recs, slot=slot, limit=limit, token=make_token(visitor_id), title=title,
                         item_id=item_id, empty_text=empty_text, loading_text=loading_text)


#: The URLs an item link may carry, as widget.js's safeUrl: http(s) or relative. Anything else
#: (javascript:, data:, protocol-relative //host) becomes "#", server-rendered or pushed alike.
SAFE_URL = re.compile(r"^(https?://|/(?!/)|\.{0,2}/|\?|#)", re.IGNORECASE)


@register.filter
def liverec_url(url) -> str:
    url = str(url or "")
    return url if SAFE_URL.match(url) else "#"


#: What the item template renders for the <template> element widget.js fills.
BLANK_ITEM = {"item_id": "", "title": "", "url": "", "reasons": []}


def render_widget(request, recs, *, slot: str, limit: int, token: str, title: str = "", item_id: str = "",
                  empty_text: str | None = None, loading_text: str | None = None) -> str:
    """The widget's markup for ``recs`` (a RecommendationList or its ``as_dict()``)."""
    return render_to_string("liverec/widget.html", {
        "slot": slot, "limit": limit, "recs": recs, "token": token, "title": title,
        "item_id": item_id, "key": slot_key(slot, str(item_id)), "blank_item": BLANK_ITEM,
        "poll_ms": int(settings.WIDGET_POLL_SECONDS * 1000),
        "empty_text": gettext("No recommendations yet.") if empty_text is None else empty_text,
        "loading_text": gettext("Loading recommendations…") if loading_text is None else loading_text,
    }, request=request)


@register.simple_tag
def liverec_widget_script(css: bool = True) -> str:
    """The widget script, and with ``css`` (default) the default stylesheet (recsys/widget.css:
    CSS custom properties a site overrides; every rule loses to the site's own selectors)."""
    script = format_html('<script src="{}" defer></script>', static("recsys/widget.js"))
    if not css:
        return script
    return format_html('<link rel="stylesheet" href="{}">{}', static("recsys/widget.css"), script)
