"""Gives every request a first-party anonymous visitor id (a server-signed cookie shared with the tracker)."""
from __future__ import annotations

from . import identity


class VisitorMiddleware:
    """Sets ``request.liverec_visitor_id``; issues a fresh id and cookie when the request has no
    validly signed one (``tracking.identity``).

    The cookie is readable by the tracker script (not HttpOnly) so server-rendered
    widgets and browser events name the same visitor.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        vid, fresh = identity.visitor_from_cookie(request)
        request.liverec_visitor_id = vid
        response = self.get_response(request)
        if fresh:
            identity.set_cookie(response, request, vid)
        return response
