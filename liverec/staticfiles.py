"""Serves the tracker's and the widget's own static files under the ASGI server, and no others.

Why: ``uvicorn mysite.asgi:application`` serves no static files, so without WhiteNoise or a
web server in front ``/static/tracking/liverec.js`` and ``/static/recsys/widget.js`` answered
404 and nothing was tracked or made live, with no warning. Only the files under the
``tracking`` and ``recsys`` apps' ``static/`` folders are served (never a path outside them,
never the site's files); any other request, and every one when ``STATIC_URL`` is on another
host, goes to the wrapped app. A site whose static files are served elsewhere passes
``serve_static=False`` to ``liverec_application``.
"""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

MAX_AGE_SECONDS = 300


def app_static_dirs() -> dict[str, Path]:
    import recsys
    import tracking

    return {f"{name}/": Path(module.__file__).resolve().parent / "static" / name
            for name, module in (("tracking", tracking), ("recsys", recsys))}


def static_prefix() -> str | None:
    """The path part of STATIC_URL, or None when static files live on another host (or nowhere)."""
    from django.conf import settings

    url = settings.STATIC_URL
    if not url:
        return None  # no static files configured at all
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    return parts.path if parts.path.startswith("/") else "/" + parts.path


class AppStaticFiles:
    """ASGI middleware: GET/HEAD of ``{STATIC_URL}tracking/...`` and ``{STATIC_URL}recsys/...``
    answered from the apps' folders (with an ETag; a matching If-None-Match gets 304)."""

    def __init__(self, app):
        self.app = app
        self.prefix = static_prefix()
        self.dirs = app_static_dirs()
        self._cache: dict[str, tuple[float, bytes, str]] = {}

    def resolve(self, path: str) -> Path | None:
        if self.prefix is None or not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix):]
        for sub, folder in self.dirs.items():
            if rest.startswith(sub):
                target = (folder / rest[len(sub):]).resolve()
                if target.is_file() and target.is_relative_to(folder):
                    return target
        return None

    def read(self, target: Path) -> tuple[bytes, str]:
        mtime = target.stat().st_mtime
        key = str(target)
        hit = self._cache.get(key)
        if hit is None or hit[0] != mtime:
            body = target.read_bytes()
            hit = (mtime, body, '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"')
            self._cache[key] = hit
        return hit[1], hit[2]

    async def __call__(self, scope, receive, send):
        target = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            target = self.resolve(scope["path"])
        if target is None:
            return await self.app(scope, receive, send)
        body, etag = self.read(target)
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        headers = [(b"etag", etag.encode()), (b"cache-control", f"public, max-age={MAX_AGE_SECONDS}".encode())]
        sent_tag = dict(scope.get("headers") or []).get(b"if-none-match", b"").decode("latin-1")
        if etag in [t.strip() for t in sent_tag.split(",")]:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
