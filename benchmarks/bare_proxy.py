"""The floor: the fastest honest pass-through proxy on the gateway's server stack, to compare the gateway with.

One Starlette route, `POST /v1/chat/completions`: body in, forwarded unparsed with one shared aiohttp
session, body out; an SSE answer (decided by the upstream's content type, so nothing parses JSON) is
relayed chunk by chunk as it arrives. The route's endpoint is a plain ASGI callable rather than a
request/response function: Starlette's Request/Response wrappers cost about a tenth of the CPU per request
here and do nothing a pass-through needs. No auth, no routing, no logging: everything the gateway does on
top of this is its overhead. Served by granian (one worker, uvloop, HTTP/1):

    BARE_PROXY_UPSTREAM=http://127.0.0.1:8001 granian --interface asgi --loop uvloop --http 1 --workers 1 \
        --factory benchmarks.bare_proxy:create_app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

UPSTREAM_ENV = "BARE_PROXY_UPSTREAM"
FORWARD_HEADERS = {"content-type": "application/json"}
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


class Relay:
    """The chat route's ASGI endpoint; holds the one upstream session, opened and closed by the lifespan."""

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None
        parts = []
        more = True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        async with self.session.post(self.url, data=b"".join(parts), headers=FORWARD_HEADERS) as resp:
            content_type = resp.headers.get("content-type", "application/json").encode()
            if not content_type.startswith(b"text/event-stream"):
                data = await resp.read()
                headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
                await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return
            await send(
                {"type": "http.response.start", "status": resp.status, "headers": [(b"content-type", content_type)]}
            )
            # each chunk goes on as soon as it is read: nothing is buffered or re-framed
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


async def health(_request: Request) -> Response:
    return Response(b"")


def create_app() -> Router:
    """A bare Router (no Starlette middleware stack): the least a Starlette route can cost. The chat route
    comes first, so the readiness route after it costs a proxied request nothing."""
    relay = Relay(os.environ.get(UPSTREAM_ENV, "http://127.0.0.1:8001"))
    routes = [
        Route("/v1/chat/completions", relay, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Router(routes=routes, lifespan=relay.lifespan)
