"""``{% liverec_tracker %}`` writes the one script tag a site needs."""
from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from ..conf import settings

register = template.Library()


@register.simple_tag(takes_context=True)
def liverec_tracker(context, item_id: str = "") -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    user_id = str(user.pk) if user is not None and user.is_authenticated else ""
    return format_html(
        '<script src="{}" defer data-endpoint="{}" data-site-key="{}" data-cookie="{}" '
        'data-item="{}" data-user="{}" data-flush-ms="{}" data-flush-size="{}" data-consent="{}"></script>',
        static("tracking/liverec.js"), reverse("tracking:ingest"), settings.SITE_KEY,
        settings.VISITOR_COOKIE, item_id, user_id, settings.FLUSH_INTERVAL_MS, settings.FLUSH_SIZE,
        "required" if settings.CONSENT_REQUIRED else "",
    )
