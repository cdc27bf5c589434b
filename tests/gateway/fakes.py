"""Fakes for gateway tests: a scriptable upstream served on a real socket, an unbuffered ASGI client, helpers.

The upstream is written as an httpx-style handler (request in, `httpx.Response` out, bodies streamed chunk by
chunk) and served by `HttpUpstream` on 127.0.0.1, so the gateway's real aiohttp client does the calling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from aiohttp import web
from sqlmodel import select

from llm_console.db.engine import session
from llm_console.db.models import RequestLog, Span
from llm_console.gateway import GatewayRuntime
from llm_console.services.keys import MintedKey
from llm_console.settings import Settings

ALIAS = "m"
UPSTREAM_MODEL = "upstream-model"
PROVIDER_KEY = "sk-provider-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "Hello"}]

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def completion(content: str = "Hi!", *, prompt: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": UPSTREAM_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + 3},
    }


def sse(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def content_chunk(text: str) -> bytes:
    return sse({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})


def usage_chunk(prompt: int, completion_tokens: int) -> bytes:
    return sse(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens},
        }
    )


DONE = b"data: [DONE]\n\n"


class ChunkStream(httpx.AsyncByteStream):
    """An upstream body produced chunk by chunk; `gate` (if set) must open before chunk `gate_at`."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        delay: float = 0.0,
        gate: asyncio.Event | None = None,
        gate_at: int = 1,
        fail_with: Exception | None = None,
    ) -> None:
        self.chunks = chunks
        self.delay = delay
        self.gate = gate
        self.gate_at = gate_at
        self.fail_with = fail_with
        self.produced = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if self.gate is not None and i == self.gate_at:
                await self.gate.wait()
            if i and self.delay:
                await asyncio.sleep(self.delay)
            self.produced += 1
            yield chunk
        if self.fail_with is not None:
            raise self.fail_with

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeUpstream:
    """Records what the gateway sent and answers with `handler` (a completion by default)."""

    handler: Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def last_json(self) -> dict[str, Any]:
        return orjson.loads(self.requests[-1].content)  # type: ignore[no-any-return]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is None:
            return httpx.Response(200, json=completion())
        return await self.handler(request)

    def reply(self, response: httpx.Response | Callable[[], httpx.Response]) -> None:
        """Answer every call with `response` (or a fresh one from a factory)."""

        async def handler(_request: httpx.Request) -> httpx.Response:
            return response() if callable(response) else response

        self.handler = handler


HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class HttpUpstream:
    """Serves a `FakeUpstream` on a real 127.0.0.1 port.

    A body stream that raises mid-way resets the connection (the client sees the stream break); a client
    that goes away cancels the handler and closes the body stream (`ChunkStream.closed`).
    """

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.base_url = ""
        self._runner: web.ServerRunner | None = None

    async def __aenter__(self) -> HttpUpstream:
        self._runner = web.ServerRunner(web.Server(self._handle, handler_cancellation=True), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        req = httpx.Request(request.method, str(request.url), headers=list(request.headers.items()), content=body)
        resp = await self.upstream(req)
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            whole = resp.content  # built with content=/json=: send it with a Content-Length
        except httpx.ResponseNotRead:
            whole = None
        if whole is not None:
            return web.Response(status=resp.status_code, body=whole, headers=headers)
        out = web.StreamResponse(status=resp.status_code, headers=headers)
        try:
            await out.prepare(request)
            async for chunk in resp.aiter_raw():
                await out.write(chunk)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            return out
        except Exception:
            if request.transport is not None:
                request.transport.abort()  # a reset mid-body, as a crashing upstream would cause
            return out
        finally:
            await resp.aclose()
        await out.write_eof()
        return out


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Like `httpx.ASGITransport`, but the response body arrives as the app sends it (no buffering).

    Closing the response early tells the app the client went away (`http.disconnect`).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tasks: list[asyncio.Task[None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 40000),
            "server": ("gw", 80),
        }
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        disconnected = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await messages.put(message)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                await messages.put({"type": "app.done"})

        task = asyncio.create_task(run())
        self.tasks.append(task)
        start = await messages.get()
        if start["type"] != "http.response.start":
            await task  # raises the app's exception
            raise AssertionError(f"app sent {start['type']} before a response start")
        return httpx.Response(
            start["status"], headers=start.get("headers", []), stream=_QueueStream(messages, disconnected, task)
        )

    async def aclose(self) -> None:
        for task in self.tasks:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _QueueStream(httpx.AsyncByteStream):
    def __init__(self, messages: asyncio.Queue[dict[str, Any]], disconnected: asyncio.Event, task: asyncio.Task[None]):
        self._messages = messages
        self._disconnected = disconnected
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._messages.get()
            if message["type"] == "app.done":
                return
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body", False):
                return

    async def aclose(self) -> None:
        self._disconnected.set()
        await asyncio.wait_for(self._task, 5)


class StoredRows:
    """Reading back what a started gateway (`self.rt`) logged, once its log writer has caught up."""

    rt: GatewayRuntime

    async def rows(self) -> list[RequestLog]:
        await asyncio.wait_for(self.rt.log.flush(), 10)
        with session(self.rt.engine) as s:
            return list(s.exec(select(RequestLog).order_by(RequestLog.created_at)))

    async def row(self) -> RequestLog:
        rows = await self.rows()
        assert len(rows) == 1, [(r.status, r.error_type) for r in rows]
        return rows[0]

    def spans(self, request_id: str) -> list[Span]:
        with session(self.rt.engine) as s:
            return list(s.exec(select(Span).where(Span.request_id == request_id).order_by(Span.start_ms, Span.id)))


@dataclass
class Gateway(StoredRows):
    rt: GatewayRuntime
    client: httpx.AsyncClient
    key: MintedKey
    deployment_id: int
    upstream: FakeUpstream
    settings: Settings
    upstream_base: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key.secret}"}

    async def chat(self, body: object = None, **kwargs: Any) -> httpx.Response:
        """POST a chat completion (a minimal valid one by default) with this gateway's key."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        if body is None:
            body = {"model": ALIAS, "messages": MESSAGES}
        if isinstance(body, (bytes, str)):
            kwargs["content"] = body
        else:
            kwargs["json"] = body
        return await self.client.post("/v1/chat/completions", headers=headers, **kwargs)


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, env="dev", _env_file=None, **overrides)  # type: ignore[call-arg]


class QueryLog:
    """Every SQL statement and parameter set an engine runs while attached."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, object]] = []

    def __call__(self, _conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        self.statements.append((statement, parameters))
