"""The floor: the fastest honest pass-through proxy on the gateway's server stack, to compare the gateway with.

One Starlette route, `POST /v1/chat/completions`: body in, forwarded unparsed with one shared aiohttp
session, body out; an SSE answer (decided by the upstream's content type, so nothing parses JSON) is
relayed chunk by chunk as it arrives. No auth, no routing, no logging: everything the gateway does on top
of this is its overhead. Served by granian (one worker, uvloop, HTTP/1):

    BARE_PROXY_UPSTREAM=http://127.0.0.1:8001 granian --interface asgi --loop uvloop --http 1 --workers 1 \
        --factory benchmarks.bare_proxy:create_app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, Router

UPSTREAM_ENV = "BARE_PROXY_UPSTREAM"
FORWARD_HEADERS = {"content-type": "application/json"}
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


class Relay:
    """Holds the one upstream session; opened and closed by the ASGI lifespan."""

    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=None)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=SKIP_AUTO_HEADERS
        )
        try:
            yield
        finally:
            await self.session.close()

    async def chat_completions(self, request: Request) -> Response:
        assert self.session is not None
        body = await request.body()
        resp = await self.session.post(self.url, data=body, headers=FORWARD_HEADERS)
        content_type = resp.headers.get("content-type", "application/json")
        if not content_type.startswith("text/event-stream"):
            try:
                data = await resp.read()
            finally:
                resp.release()
            return Response(data, status_code=resp.status, media_type=content_type)
        return StreamingResponse(_relay(resp), status_code=resp.status, media_type=content_type)


async def _relay(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Pass each chunk on as soon as it is read; the upstream connection goes back to the pool at the end."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    finally:
        resp.release()


async def health(_request: Request) -> Response:
    return Response(b"")


def create_app() -> Router:
    """A bare Router (no Starlette middleware stack): the least a Starlette route can cost. The chat route
    comes first, so the readiness route after it costs a proxied request nothing."""
    relay = Relay(os.environ.get(UPSTREAM_ENV, "http://127.0.0.1:8001"))
    routes = [
        Route("/v1/chat/completions", relay.chat_completions, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Router(routes=routes, lifespan=relay.lifespan)
