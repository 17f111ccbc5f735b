"""Test helpers: requests that come from a given visitor, as a browser holding its signed cookie."""
from __future__ import annotations

from tracking import identity
from tracking.conf import settings


def cookie_value(visitor_id: str) -> str:
    return identity.sign(visitor_id)


def cookies(visitor_id: str) -> dict[str, str]:
    """For httpx: ``httpx.post(..., cookies=cookies(visitor))``."""
    return {settings.VISITOR_COOKIE: cookie_value(visitor_id)}


def cookie_header(visitor_id: str) -> str:
    return f"{settings.VISITOR_COOKIE}={cookie_value(visitor_id)}"


def as_visitor(client, payload) -> None:
    """Give a Django test client the signed cookie of the payload's ``visitor_id`` (if any)."""
    if isinstance(payload, dict) and isinstance(payload.get("visitor_id"), str):
        client.cookies[settings.VISITOR_COOKIE] = cookie_value(payload["visitor_id"])


class liverec_socket:  # noqa: N801 - used like websockets.connect
    """``websockets.connect`` for LiveRec's socket: a ``token`` written in the URI (as tests
    build them) is taken out of it and sent as the first message, ``{"type": "auth", ...}``,
    as widget.js does; the server refuses tokens in URLs. Use with ``async with`` or ``await``."""

    def __init__(self, uri: str, **kwargs):
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.token = next((v for k, v in query if k == "token"), None)
        self.uri = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "token"])))
        self.kwargs = kwargs

    async def _open(self):
        import json

        import websockets

        ws = await websockets.connect(self.uri, **self.kwargs)
        if self.token is not None:
            await ws.send(json.dumps({"type": "auth", "token": self.token}))
        return ws

    def __await__(self):
        return self._open().__await__()

    async def __aenter__(self):
        self.ws = await self._open()
        return self.ws

    async def __aexit__(self, *exc):
        await self.ws.close()
