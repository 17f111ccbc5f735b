"""ASGI entry point: HTTP through Django (ingest on its lean route), WebSockets through LiveRec's routes."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from recsys.routing import websocket_urlpatterns  # noqa: E402
from tracking.asgi import with_fast_ingest  # noqa: E402

application = ProtocolTypeRouter({
    # The tracker's endpoint on a lean path (see tracking.asgi); every other URL through Django.
    "http": with_fast_ingest(django_asgi_app),
    "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
})

# The start-up heap (Django, torch, the routes: ~255,000 objects) out of the garbage
# collector's full scans, each ~130 ms that stalled every socket and POST (recsys.warmup).
from recsys.warmup import freeze_heap  # noqa: E402

freeze_heap()
