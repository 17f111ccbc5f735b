"""A written interest summary per visitor: built off the hot path, debounced, in their language."""
from __future__ import annotations

import logging
import re
import time

from django.core.cache import cache

from tracking import cachekeys
from tracking.models import Event

from ..conf import settings
from ..models import Item, VisitorProfile
from ..summaries import get_summarizer
from . import dispatch
from .coalesce import claim_many

logger = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "zh": "Chinese", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
             "pt": "Portuguese", "nl": "Dutch", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "ar": "Arabic",
             "pl": "Polish", "tr": "Turkish", "th": "Thai"}
_CJK = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
# Events read to describe recent activity: the newest few say what the visitor does now.
RECENT_EVENTS = 12


# A visitor's pending flag lives until its summary task starts (the task releases it), however
# long the summaries queue is: at most one summary waits per visitor. Its TTL only bounds what a
# lost task costs (that visitor's next summary waits this long). With the flag living
# DEBOUNCE + 60 s, a backlog longer than that let a second, third... summary of the same
# visitor join the queue.
PENDING_TTL_SECONDS = 3600


def pending_key(visitor_id: str) -> str:
    return cachekeys.visitor_key("liverec:summary:pending", visitor_id)


_debounce_key = pending_key


def request_summary(visitor_id: str) -> bool:
    """Schedule a summary in SUMMARY_DEBOUNCE_SECONDS unless one is already pending."""
    return request_summaries([visitor_id]) == [visitor_id]


def request_summaries(visitor_ids: list[str]) -> list[str]:
    """``request_summary`` of each visitor; returns those scheduled now.

    One round trip on the realtime path for all the visitors a cycle touched (atomic SET NX
    flags, ``coalesce.claim_many``); the LLM runs on the summaries queue, never ahead of an
    item embedding or an association fold (``recsys.tasks.SUMMARIES``).
    """
    if not visitor_ids or not get_summarizer().enabled:
        return []
    summarize_visitor = dispatch.task("summarize_visitor")

    delay = int(settings.SUMMARY_DEBOUNCE_SECONDS)
    ttl = max(PENDING_TTL_SECONDS, delay + 60)
    claimed = [v for v, ok in zip(visitor_ids, claim_many([pending_key(v) for v in visitor_ids], ttl)) if ok]
    for visitor_id in claimed:
        summarize_visitor.apply_async((visitor_id,), countdown=delay)
    return claimed


def visitor_language(events: list[Event]) -> str:
    """An ISO code from a language/locale property the tracker or site sent, else the script of
    their searches, else English."""
    for ev in events:
        for key in ("lang", "language", "locale"):
            value = str((ev.properties or {}).get(key) or "")[:2].lower()
            if value in LANGUAGES:
                return value
    queries = " ".join(str((ev.properties or {}).get("query") or "") for ev in events)
    if _KANA.search(queries):
        return "ja"
    if _HANGUL.search(queries):
        return "ko"
    if _CJK.search(queries):
        return "zh"
    return "en"


def build_messages(profile: VisitorProfile, events: list[Event]) -> tuple[list[dict], str]:
    lang = visitor_language(events)
    interests = sorted(profile.interests, key=lambda i: -i["weight"])
    labels = [i["label"] for i in interests if i.get("label")][:3]
    item_ids = [e.item_id for e in events if e.item_id and e.name not in ("not_interested",)]
    titles = dict(Item.objects.filter(item_id__in=item_ids).values_list("item_id", "title"))
    seen = list(dict.fromkeys(titles[i] for i in item_ids if titles.get(i)))[:5]
    queries = list(dict.fromkeys(str(e.properties.get("query")) for e in events if e.name == "searched"
                                 and e.properties.get("query")))[:3]
    facts = []
    if labels:
        facts.append("Main interests: " + "; ".join(labels) + ".")
    if seen:
        facts.append("Recently looked at: " + ", ".join(seen) + ".")
    if queries:
        facts.append("Searched for: " + ", ".join(queries) + ".")
    language = LANGUAGES[lang]
    messages = [
        {"role": "system", "content": f"You describe a shopper's tastes for a shop assistant in one or two short "
                                      f"sentences, in {language}. Only use the facts given."},
        {"role": "user", "content": " ".join(facts) + f" Describe this visitor's tastes in {language}."},
    ]
    return messages, lang


def summarize(visitor_id: str) -> str:
    """Generate and store the visitor's summary; returns it ("" when disabled or nothing to say)."""
    summarizer = get_summarizer()
    profile = VisitorProfile.objects.filter(visitor_id=visitor_id).first()
    if not summarizer.enabled or profile is None or not profile.interests:
        return ""
    events = list(Event.objects.filter(visitor_id=visitor_id, is_bot=False).order_by("-id")[:RECENT_EVENTS])
    messages, lang = build_messages(profile, events)
    started = time.perf_counter()
    text = " ".join(summarizer.generate(messages, settings.SUMMARY_MAX_TOKENS).split()).strip()
    logger.info("recsys: summary for %s in %.0f ms (%s)", visitor_id, 1000 * (time.perf_counter() - started), lang)
    if text:
        VisitorProfile.objects.filter(pk=profile.pk).update(summary=text)
    return text
