"""Reasons in words: templates per language, and the evidence each reason names.

A strategy gives a reason a ``kind`` (which template) and its ``evidence`` (what the visitor
did or what the site knows: an earlier item, a search, an interest label, a popularity
scope); the engine fills in item titles it read anyway and renders the text here. Sites
override any template per language with ``LIVEREC["REASONS"]``::

    "REASONS": {"LANGUAGE": "en", "TEMPLATES": {"en": {"viewed": "Because you looked at {title}"}}}

``LANGUAGE`` empty (the default) means Django's ``LANGUAGE_CODE`` (its primary subtag: "en-us"
reads "en"). A language without templates falls back to English, template by template.
"""
from __future__ import annotations

from typing import Any

from .conf import settings

#: The cosine to an interest (or the short-term direction) from which an item is said to be
#: "for your interest in ..." (or "like" what was just viewed). With all-MiniLM-L6-v2 on the
#: twelve-film test catalogue, after views of Alien, Aliens and The Terminator their unit mean
#: is at 0.66 from Blade Runner and Star Wars, 0.60 from Fargo (a thriller), 0.53 from
#: Casablanca, and 0.27-0.44 from the five children's films (``bench/bench_reason_floors.py``).
INTEREST_MIN_SIMILARITY = 0.55

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        # An earlier item of the visitor, by how they engaged with it (tracking event names).
        "item_viewed": "Because you viewed {title}",
        "item_clicked": "Because you viewed {title}",
        "recommendation_clicked": "Because you viewed {title}",
        "rated": "Because you rated {title}",
        "added_to_cart": "Because you added {title} to your cart",
        "purchased": "Because you bought {title}",
        "page": "Often viewed with {title}",
        "similar": "Similar to {title}",
        "next": "Often viewed after {title}",
        "browsing": "Like {title}, which you just viewed",
        "browsing_now": "Like what you are browsing now",
        "search": "Matches your search \u201c{query}\u201d",
        "interest": "For your interest in {label}",
        "trending": "Popular right now",
        "trending_in": "Popular in {category} right now",
        "popular": "Popular on this site",
        "popular_in": "Popular in {category}",
        "new": "New this week",
        "catalogue": "From our catalogue",
        "featured": "Featured",
        # The "Why?" trail: one line per piece of evidence (the widget adds when it happened).
        "trail_item_viewed": "You viewed {title}",
        "trail_item_clicked": "You viewed {title}",
        "trail_recommendation_clicked": "You viewed {title}",
        "trail_rated": "You rated {title}",
        "trail_added_to_cart": "You added {title} to your cart",
        "trail_purchased": "You bought {title}",
        "trail_item": "{title}",
        "trail_query": "You searched “{query}”",
    },
    "zh": {
        "item_viewed": "因为你浏览过《{title}》",
        "item_clicked": "因为你浏览过《{title}》",
        "recommendation_clicked": "因为你浏览过《{title}》",
        "rated": "因为你评价过《{title}》",
        "added_to_cart": "因为你把《{title}》加入了购物车",
        "purchased": "因为你购买过《{title}》",
        "page": "常与《{title}》一起浏览",
        "similar": "与《{title}》相似",
        "next": "浏览《{title}》之后常看",
        "browsing": "与你刚浏览的《{title}》相似",
        "browsing_now": "与你正在浏览的内容相似",
        "search": "符合你的搜索“{query}”",
        "interest": "根据你对{label}的兴趣",
        "trending": "现在热门",
        "trending_in": "{category}中现在热门",
        "popular": "本站热门",
        "popular_in": "{category}热门",
        "new": "本周新品",
        "catalogue": "来自我们的目录",
        "featured": "精选",
        "trail_item_viewed": "你浏览了《{title}》",
        "trail_item_clicked": "你浏览了《{title}》",
        "trail_recommendation_clicked": "你浏览了《{title}》",
        "trail_rated": "你评价了《{title}》",
        "trail_added_to_cart": "你把《{title}》加入了购物车",
        "trail_purchased": "你购买了《{title}》",
        "trail_item": "《{title}》",
        "trail_query": "你搜索了“{query}”",
    },
}

#: Event names whose item is an earlier engagement worth naming (the rest read "viewed").
ITEM_EVENT_KINDS = ("item_viewed", "item_clicked", "recommendation_clicked", "rated", "added_to_cart", "purchased")


def language() -> str:
    from django.conf import settings as django_settings

    lang = str(settings.REASONS.get("LANGUAGE") or django_settings.LANGUAGE_CODE or "en")
    return lang.split("-")[0].lower()


def templates(lang: str | None = None) -> dict[str, str]:
    """English defaults, under the language's defaults, under the site's templates for it."""
    lang = lang or language()
    site = (settings.REASONS.get("TEMPLATES") or {}).get(lang) or {}
    return {**DEFAULT_TEMPLATES["en"], **DEFAULT_TEMPLATES.get(lang, {}), **site}


def item_kind(event_name: str) -> str:
    return event_name if event_name in ITEM_EVENT_KINDS else "item_viewed"


def render(kind: str, fields: dict[str, Any], lang: str | None = None) -> str:
    """The reason's text; ``kind`` names the template, ``fields`` fill it (missing ones read "")."""
    template = templates(lang).get(kind)
    if template is None:
        raise KeyError(f"no reason template {kind!r}; known kinds: {sorted(templates(lang))}")
    return template.format_map(_Blank(fields))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def trail_text(evidence: dict[str, Any], lang: str | None = None) -> str:
    """The "Why?" line of one piece of evidence ("You viewed Alien"); "" when it names nothing."""
    kind = evidence.get("kind")
    if kind == "item" and evidence.get("title"):
        event = evidence.get("event") or ""
        return render(f"trail_{event}" if event in ITEM_EVENT_KINDS else "trail_item", evidence, lang)
    if kind == "query" and evidence.get("query"):
        return render("trail_query", evidence, lang)
    return ""  # an interest's label or a popularity scope is the reason's own text already


def item_evidence(item_id: str, *, title: str = "", event: str = "", at: Any = None) -> dict[str, Any]:
    """An earlier item of the visitor: ``title`` is filled by the engine when left empty."""
    return {"kind": "item", "item_id": str(item_id), "title": title, "event": event,
            "at": at.isoformat() if hasattr(at, "isoformat") else at}


def engagement_trail(engagements: list[Any], limit: int = 3) -> list[dict[str, Any]]:
    """The visitor's latest distinct engagements (newest first) as item evidence."""
    out, seen = [], set()
    for e in engagements:
        if e.item_id in seen:
            continue
        seen.add(e.item_id)
        out.append(item_evidence(e.item_id, event=e.name, at=e.at))
        if len(out) >= limit:
            break
    return out


def latest_engagement(engagements: list[Any], item_id: str) -> Any:
    """The visitor's newest engagement with ``item_id`` (``engagements`` are newest first)."""
    return next((e for e in engagements if e.item_id == item_id), None)
