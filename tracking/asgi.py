"""A lean ASGI route for the ingest endpoint, in front of the host's Django ASGI app.

    application = ProtocolTypeRouter({"http": tracking.asgi.with_fast_ingest(get_asgi_application()), ...})

Why: through Django's ASGIHandler a request of 20 events cost ~10 ms of CPU (bench_ingest,
py-spy): each request starts and joins a fresh thread (asgiref's ThreadSensitiveContext),
and a sync-only middleware in the stack (WhiteNoise) makes the request cross from the
event loop to a thread, back to the loop and to a thread again. The tracker's endpoint needs
none of the stack: it is CSRF-exempt by design, answers JSON, and is guarded by its own
origin allow-list, site key and rate limits. Here the same view (``tracking.views.ingest``,
wrapped in the same ``VisitorMiddleware``) runs on a persistent thread pool, one hop per
request. The session is read only when the request carries a session cookie, so events
of a logged-in visitor are still linked to their user id. Everything else goes to Django.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from io import BytesIO

from django.conf import settings as django_settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from .conf import settings

logger = logging.getLogger(__name__)

# Threads that run ingest views. Each holds at most one pooled database connection while
# it runs; more threads than pool connections would only queue on the pool.
DEFAULT_THREADS = 4


class FastIngest:
    """ASGI app: POST/OPTIONS to the ingest URL handled here, everything else by ``app``."""

    def __init__(self, app, threads: int = DEFAULT_THREADS):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="liverec-ingest")

    @cached_property
    def path(self) -> str:
        return reverse("tracking:ingest")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] not in ("POST", "OPTIONS"):
            return await self.app(scope, receive, send)
        body = await self._read_body(receive)
        if body is None:
            return  # the client went away
        response = await asyncio.get_running_loop().run_in_executor(self.executor, self._handle, scope, body)
        await self._send(response, send)

    @staticmethod
    async def _read_body(receive) -> bytes | None:
        """The whole body; past the endpoint's limit only its first limit+1 bytes are kept
        (the rest is drained, not buffered) so the view answers 413 as for any big body."""
        cap = settings.MAX_BODY_BYTES + 1
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if size < cap:
                chunks.append(chunk[:cap - size])
            size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _handle(self, scope, body: bytes) -> HttpResponse:
        """Run in a pool thread: the view with Django's request signals (pooled connections are
        returned on request_finished, as under the full handler)."""
        # Imported here: a site's asgi.py imports this module before Django is set up, and
        # the view and middleware import models.
        from .middleware import VisitorMiddleware
        from .views import ingest

        signals.request_started.send(sender=self.__class__, scope=scope)
        try:
            request = ASGIRequest(scope, BytesIO(body))
            try:
                request.get_host()  # the view compares Origin with it; Django's handler checks it first too
            except DisallowedHost as exc:
                # Bad input, as Django's own handler answers it (400), not a traceback per request.
                logger.warning("tracking: ingest refused: %s", exc)
                return JsonResponse({"error": "the Host header is not in ALLOWED_HOSTS"}, status=400)
            if django_settings.SESSION_COOKIE_NAME in request.COOKIES:
                request.user = SimpleLazyObject(lambda: _user(request))
            return VisitorMiddleware(ingest)(request)
        except Exception:  # the view answers its own errors; this is a bug, not bad input
            logger.exception("tracking: ingest failed")
            return JsonResponse({"error": "internal error"}, status=500)
        finally:
            signals.request_finished.send(sender=self.__class__)

    @staticmethod
    async def _send(response: HttpResponse, send) -> None:
        body = response.content
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        if not response.has_header("Content-Length"):  # a known length, not a chunked body
            headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        for cookie in response.cookies.values():
            headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _user(request):
    """The logged-in user, as AuthenticationMiddleware would give it (a session read)."""
    from importlib import import_module

    from django.contrib.auth import get_user

    engine = import_module(django_settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(django_settings.SESSION_COOKIE_NAME))
    return get_user(request)


def with_fast_ingest(app, threads: int = DEFAULT_THREADS) -> FastIngest:
    return FastIngest(app, threads)
