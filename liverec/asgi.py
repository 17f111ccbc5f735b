"""The whole ASGI application of a site running LiveRec, in one call.

    # mysite/asgi.py
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from liverec.asgi import liverec_application
    application = liverec_application()

HTTP goes through Django, except the tracker's ingest endpoint, which takes a lean route
(``tracking.asgi``: a quarter of the CPU per event) and the tracker's and widget's static
files (``liverec.staticfiles``, unless ``serve_static=False``). WebSockets go to LiveRec's
routes plus ``websocket_urlpatterns`` of the site's own, behind Channels'
``AllowedHostsOriginValidator`` (a page on another host cannot open a visitor's socket).
Last, the start-up heap is frozen out of the garbage collector's full scans
(``recsys.warmup.freeze_heap``: each scan stalled every socket for ~130 ms).
"""
from __future__ import annotations

from typing import Iterable


def liverec_application(*, django_app=None, websocket_urlpatterns: Iterable = (), serve_static: bool = True,
                        freeze_heap: bool = True):
    """The ASGI app: ``django_app`` defaults to Django's ``get_asgi_application()`` (which
    sets Django up; call this after DJANGO_SETTINGS_MODULE is set)."""
    if django_app is None:
        from django.core.asgi import get_asgi_application

        django_app = get_asgi_application()

    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    from recsys.routing import websocket_urlpatterns as liverec_routes
    from recsys.warmup import freeze_heap as freeze
    from tracking.asgi import with_fast_ingest

    from .staticfiles import AppStaticFiles

    http = with_fast_ingest(django_app)
    if serve_static:
        http = AppStaticFiles(http)
    application = ProtocolTypeRouter({
        "http": http,
        "websocket": AllowedHostsOriginValidator(URLRouter([*liverec_routes, *websocket_urlpatterns])),
    })
    if freeze_heap:
        freeze()
    return application
