"""Gives every request a first-party anonymous visitor id (cookie shared with the tracker)."""
from __future__ import annotations

import re
import uuid

from .conf import settings

_VALID = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")


class VisitorMiddleware:
    """Sets ``request.liverec_visitor_id``; issues the cookie when missing.

    The cookie is readable by the tracker script (not HttpOnly) so server-rendered
    widgets and browser events name the same visitor.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = settings.VISITOR_COOKIE
        vid = request.COOKIES.get(name, "")
        fresh = not _VALID.match(vid)
        if fresh:
            vid = uuid.uuid4().hex
        request.liverec_visitor_id = vid
        response = self.get_response(request)
        if fresh:
            response.set_cookie(name, vid, max_age=settings.VISITOR_COOKIE_MAX_AGE, samesite="Lax",
                                secure=request.is_secure())
        return response
